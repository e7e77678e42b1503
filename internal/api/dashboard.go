package api

import (
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
)

// The device-login approval page: server-rendered HTML, no JavaScript. The
// CLI prints <app>/dashboard/cli/login?session=<id>; a person approves with
// an organization API key holding api_keys:write, which is used for that
// one request and never stored or logged.

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>CapyDB — approve device login</title>
<style>
body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dt{color:#666}
input[type=password]{width:100%;padding:.5rem;font-family:monospace;box-sizing:border-box}
button{margin-top:1rem;padding:.5rem 1.2rem;font-size:1rem}.error{color:#a00}.ok{color:#070}
</style></head><body>
<h1>{{.Title}}</h1>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
{{if .Message}}<p class="ok">{{.Message}}</p>{{end}}
{{with .Session}}
<p>A command-line client asks for an API key for your organization.</p>
<dl>
<dt>Key name</dt><dd>{{.KeyName}}</dd>
<dt>Device</dt><dd>{{if .DeviceName}}{{.DeviceName}}{{else}}(not given){{end}}</dd>
<dt>Source</dt><dd>{{.Source}}</dd>
<dt>Scopes</dt><dd>{{if .Scopes}}{{range $i, $s := .Scopes}}{{if $i}}, {{end}}{{$s}}{{end}}{{else}}the same as the approving key's{{end}}</dd>
<dt>Key expires</dt><dd>{{if .KeyExpiresAt}}{{.KeyExpiresAt}}{{else}}90 days after approval{{end}}</dd>
<dt>Request expires</dt><dd>{{.ExpiresAt}}</dd>
</dl>
{{if $.Form}}
<form method="post" action="/dashboard/cli/login">
<input type="hidden" name="session" value="{{.ID}}">
<p><label for="api_key">Approve with an organization API key that holds <code>api_keys:write</code>
(the bootstrap admin key works). It is used for this request only.</label></p>
<input type="password" id="api_key" name="api_key" autocomplete="off" required placeholder="capy_live_...">
<button type="submit">Approve</button>
</form>
{{end}}
{{end}}
</body></html>
`))

type loginPageSession struct {
	ID, KeyName, DeviceName, Source, KeyExpiresAt, ExpiresAt string
	Scopes                                                   []string
}

type loginPageData struct {
	Title, Error, Message string
	Session               *loginPageSession
	Form                  bool
}

func pageSession(l *store.LoginSession) *loginPageSession {
	ps := &loginPageSession{ID: l.ID, KeyName: l.KeyName, Source: l.Source, Scopes: l.Scopes,
		ExpiresAt: l.ExpiresAt.UTC().Format(time.RFC1123)}
	if l.DeviceName != nil {
		ps.DeviceName = *l.DeviceName
	}
	if l.KeyExpiresAt != nil {
		ps.KeyExpiresAt = l.KeyExpiresAt.UTC().Format(time.RFC1123)
	}
	return ps
}

func (s *Server) dashboardCLILogin(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	render := func(status int, d loginPageData) {
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_ = loginPage.Execute(w, d)
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		id := r.URL.Query().Get("session")
		if id == "" {
			render(http.StatusBadRequest, loginPageData{Title: "Device login", Error: "This link has no session: run the login command again and open the URL it prints."})
			return
		}
		l, err := auth.GetLogin(r.Context(), s.deps.Store, id)
		switch {
		case errors.Is(err, auth.ErrLoginNotFound):
			render(http.StatusNotFound, loginPageData{Title: "Device login", Error: "This login request does not exist."})
		case errors.Is(err, auth.ErrLoginExpired):
			render(http.StatusGone, loginPageData{Title: "Device login", Error: "This login request has expired: run the login command again."})
		case err != nil:
			s.deps.Log.ErrorContext(r.Context(), "reading a login session failed", "error", err)
			render(http.StatusInternalServerError, loginPageData{Title: "Device login", Error: "Something went wrong; try again."})
		case l.State != "pending":
			render(http.StatusOK, loginPageData{Title: "Device login", Message: "This login request is already approved.", Session: pageSession(l)})
		default:
			render(http.StatusOK, loginPageData{Title: "Approve device login", Session: pageSession(l), Form: true})
		}
	case http.MethodPost:
		s.dashboardApprove(w, r, render)
	default:
		h.Set("Allow", "GET, HEAD, POST")
		render(http.StatusMethodNotAllowed, loginPageData{Title: "Device login", Error: "Method not allowed."})
	}
}

func (s *Server) dashboardApprove(w http.ResponseWriter, r *http.Request, render func(int, loginPageData)) {
	fail := func(status int, msg string) {
		render(status, loginPageData{Title: "Device login", Error: msg})
	}
	client := auth.ClientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), s.deps.TrustedProxies)
	limited := func(bucket string) bool {
		if s.deps.Limiter == nil {
			return false
		}
		ok, wait := s.deps.Limiter.Allow(bucket, client)
		if !ok {
			w.Header().Set("Retry-After", auth.RetryAfterSeconds(wait))
			fail(http.StatusTooManyRequests, "Too many attempts; wait a moment and try again.")
		}
		return !ok
	}
	if limited(auth.BucketAPI) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "The form could not be read.")
		return
	}
	id := r.PostForm.Get("session")
	key := strings.TrimSpace(r.PostForm.Get("api_key"))
	if id == "" {
		fail(http.StatusBadRequest, "The form has no session.")
		return
	}
	if key == "" {
		fail(http.StatusUnauthorized, "Enter an organization API key that holds api_keys:write.")
		return
	}
	p, err := s.deps.Auth.APIKey(r.Context(), key)
	if errors.Is(err, auth.ErrUnauthenticated) {
		if limited(auth.BucketFailedAuth) {
			return
		}
		fail(http.StatusUnauthorized, "That API key is invalid, revoked or expired.")
		return
	}
	if err != nil {
		s.deps.Log.ErrorContext(r.Context(), "authentication lookup failed", "error", err)
		fail(http.StatusServiceUnavailable, "Authentication is temporarily unavailable; try again.")
		return
	}
	if p.ProjectScoped() {
		fail(http.StatusForbidden, "A project-scoped key cannot approve a login; use an organization key.")
		return
	}
	if !p.Has(auth.ScopeAPIKeysWrite) {
		fail(http.StatusForbidden, "That key does not hold api_keys:write.")
		return
	}
	l, err := auth.ApproveLogin(r.Context(), s.deps.Store, id, p)
	var ue *auth.UngrantableError
	switch {
	case err == nil:
		render(http.StatusOK, loginPageData{Title: "Device login", Message: "Approved — you can return to your terminal.", Session: pageSession(l)})
	case errors.Is(err, auth.ErrLoginNotFound):
		fail(http.StatusNotFound, "This login request does not exist.")
	case errors.Is(err, auth.ErrLoginExpired):
		fail(http.StatusGone, "This login request has expired: run the login command again.")
	case errors.Is(err, auth.ErrLoginApproved):
		fail(http.StatusConflict, "This login request is already approved.")
	case errors.As(err, &ue):
		fail(http.StatusForbidden, "The request asks for scope "+ue.Scope+", which that key does not hold.")
	default:
		s.deps.Log.ErrorContext(r.Context(), "approving a login session failed", "error", err)
		fail(http.StatusInternalServerError, "Something went wrong; try again.")
	}
}
