// Package api is CapyDB's HTTP API: huma operations (one file per resource)
// whose OpenAPI 3.1 document is generated from the handlers, plus the
// middleware every request passes (version header, logs, auth, scopes).
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/supabase"
	"github.com/capydb/capydb/internal/webhooks"
	"github.com/capydb/capydb/internal/webui"
	"github.com/capydb/capydb/internal/wire"
	"github.com/capydb/capydb/web"
)

// Deps are what the handlers need.
type Deps struct {
	Store     *store.Store
	Lifecycle *lifecycle.Service
	Auth      *auth.Authenticator
	Log       *slog.Logger
	Version   string
	// Ready reports whether the server can serve (control DB, migrations, cluster).
	Ready func(ctx context.Context) error
	// Components reports the status of the server's parts for GET /status.
	Components func(ctx context.Context) []StatusComponent
	Registry   *prometheus.Registry
	// Limiter rate-limits per client address (nil = unlimited).
	Limiter *auth.Limiter
	// TrustedProxies may set X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// Webhooks manages webhook endpoints (validation, secrets, test, redeliver).
	Webhooks *webhooks.Service
	// Blob holds backups, exports and uploads; the signed object routes
	// stream them (nil = no backup storage configured).
	Blob *blobstore.Store
	// Ephemeral turns ephemeral databases on (API.md §3.26).
	Ephemeral EphemeralConfig
	// CACert returns the PEM CA certificate of the database ports (nil
	// func or nil bytes: none to hand out).
	CACert func() ([]byte, error)
	// LogRetention bounds the log lines served (0: 7 days); LogSearch
	// enables the searchable archive (otherwise its route answers 503).
	LogRetention time.Duration
	LogSearch    bool
	// Dashboard serves /dashboard/… (nil: the web app embedded in the binary).
	Dashboard http.Handler
	// ReadReplicaLag reports the standby of a cluster (nil result: none).
	ReadReplicaLag func(ctx context.Context, clusterID string) *wire.ReplicaStatus
	// OIDCClient enables the dashboard's OIDC sign-in (needs Auth.OIDC).
	OIDCClient *OIDCClient
}

// Server is the API's http.Handler.
type Server struct {
	deps    Deps
	api     huma.API
	handler http.Handler
	rules   []AccessRule
	// httpRequests counts answers (nil without a registry).
	httpRequests *prometheus.CounterVec
	// resolvers check the tenancy of path ids (see access.go).
	resolvers map[string]resolver
	// sessions are the dashboard's signed-in browsers (websession.go).
	sessions *auth.WebSessions
	oidc     *oidcLogin // nil: no OIDC sign-in
	// supabase is the Supabase-compatible facade at /api/supabase/v1.
	supabase *supabase.Facade
}

// apiError is the only error body: {"error": "..."}.
type apiError struct {
	status  int
	Message string `json:"error"`
	headers http.Header
}

func (e *apiError) Error() string             { return e.Message }
func (e *apiError) GetStatus() int            { return e.status }
func (e *apiError) ContentType(string) string { return jsonMediaType }
func (e *apiError) GetHeaders() http.Header   { return e.headers }
func errorf(status int, format string, a ...any) *apiError {
	return &apiError{status: status, Message: fmt.Sprintf(format, a...)}
}

func init() {
	// Lists are never null on the wire (API.md §1.5; nilSlicesToEmpty).
	huma.DefaultArrayNullable = false
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		// Huma reports validation problems as 422 with details; we answer 400
		// with one message that names the field.
		if status == http.StatusUnprocessableEntity {
			status = http.StatusBadRequest
		}
		for _, e := range errs {
			var d *huma.ErrorDetail
			if errors.As(e, &d) {
				msg = describeDetail(d)
				break
			}
			if e != nil && msg == "" {
				msg = e.Error()
			}
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return &apiError{status: status, Message: msg}
	}
}

func describeDetail(d *huma.ErrorDetail) string {
	field := strings.TrimPrefix(strings.TrimPrefix(d.Location, "body."), "body")
	field = strings.TrimPrefix(field, "query.")
	field = strings.TrimPrefix(field, "path.")
	v, _ := d.Value.(string)
	if msg, ok := enumMessage(field, d.Message, v); ok {
		return msg
	}
	switch {
	case d.Message == "unexpected property":
		return fmt.Sprintf("unknown field %q", field)
	case strings.HasPrefix(d.Message, "invalid character") || strings.HasPrefix(d.Message, "unexpected end of JSON"):
		return "request body is not valid JSON"
	case field == "":
		return d.Message
	default:
		return fmt.Sprintf("invalid field %q: %s", field, d.Message)
	}
}

// New builds the API.
func New(deps Deps) *Server {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	if deps.Dashboard == nil {
		deps.Dashboard = webui.Handler(web.Dist())
	}
	s := &Server{deps: deps, sessions: auth.NewWebSessions()}
	if deps.OIDCClient != nil && deps.OIDCClient.ClientID != "" && deps.Auth != nil && deps.Auth.OIDC != nil {
		s.oidc = newOIDCLogin(*deps.OIDCClient)
	}
	if deps.Registry != nil {
		s.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "capydb_http_requests_total",
			Help: "API answers by method, route template and status."}, []string{"method", "route", "status"})
		deps.Registry.MustRegister(s.httpRequests)
	}
	s.resolvers = s.defaultResolvers()
	mux := http.NewServeMux()
	cfg := huma.Config{
		OpenAPI: &huma.OpenAPI{
			OpenAPI: "3.1.0",
			Info: &huma.Info{Title: "CapyDB API", Version: deps.Version,
				Description: "Self-hostable managed PostgreSQL. The wire contract is API.md; errors are always `{\"error\": \"...\"}`.",
				Contact:     &huma.Contact{Name: "CapyDB", URL: "https://github.com/capydb/capydb"},
				License:     &huma.License{Name: "Apache-2.0", Identifier: "Apache-2.0"}},
			Components: &huma.Components{
				Schemas: huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer),
				SecuritySchemes: map[string]*huma.SecurityScheme{
					"bearer": {Type: "http", Scheme: "bearer", Description: "API key (capy_live_...) or OIDC session JWT"},
				},
			},
		},
		OpenAPIPath:   "/v1/openapi",
		Formats:       apiFormats(),
		DefaultFormat: "application/json",
		Transformers:  []huma.Transformer{nilSlicesToEmpty},
	}
	s.api = humago.New(mux, cfg)
	s.registerMe()
	s.registerCatalog()
	s.registerReadReplicas()
	s.registerProjects()
	s.registerEphemeral()
	s.registerJobs()
	s.registerPreviews()
	s.registerStatus()
	s.registerCACert()
	s.registerStubs()
	s.registerWebhooks()
	s.registerAccess()
	s.registerBackups()
	s.registerRestores()
	s.registerPITR()
	s.registerExports()
	s.registerImports()
	s.registerFollowImports()
	s.registerCutovers()
	s.registerSchema()
	s.registerStudio()
	s.registerDatabaseSettings()
	s.registerExtensions()
	s.registerObservability()
	s.registerLogs()
	s.registerUsage()
	s.registerIntegrations()
	// Keep last: it completes the document of every operation above.
	s.typeDocument()

	root := http.NewServeMux()
	root.Handle("/v1/", mux)
	root.Handle("/status", mux)
	root.Handle("/dashboard/cli/login", http.HandlerFunc(s.dashboardCLILogin))
	root.Handle("/dashboard/session", http.HandlerFunc(s.dashboardSession))
	root.HandleFunc("GET /dashboard/config", s.dashboardConfig)
	root.HandleFunc("GET /dashboard/oidc/login", s.oidcLoginStart)
	root.HandleFunc("GET /dashboard/oidc/callback", s.oidcLoginCallback)
	root.Handle("/dashboard", deps.Dashboard)
	root.Handle("/dashboard/", deps.Dashboard)
	root.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		// The root opens the dashboard.
		redirect(w, webui.Prefix+"/")
	})
	s.registerObjects(root)
	s.mountSupabase(root)
	root.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	root.HandleFunc("GET /readyz", s.readyz)
	if deps.Registry != nil {
		root.Handle("GET /metrics", promhttp.HandlerFor(deps.Registry, promhttp.HandlerOpts{}))
	}
	root.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	})
	s.handler = s.outer(root)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// OpenAPI returns the generated document.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

// outer is the middleware every request passes: the /api/capydb mount,
// trailing slashes, the version header, JSON content types and access logs.
func (s *Server) outer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w.Header().Set("X-CapyDB-Version", s.deps.Version)
		logPath := redactPath(r.URL.Path)
		if msg := checkRequestURL(r); msg != "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
			s.logRequest(r, logPath, http.StatusBadRequest, start)
			return
		}
		if rest, ok := strings.CutPrefix(r.URL.Path, "/api/capydb"); ok && (strings.HasPrefix(rest, "/v1/") || rest == "/status" || rest == "/status/") {
			r.URL.Path = rest
			r.URL.RawPath = ""
		}
		if len(r.URL.Path) > 1 && strings.HasSuffix(r.URL.Path, "/") {
			r.URL.Path = strings.TrimRight(r.URL.Path, "/")
			r.URL.RawPath = ""
		}
		rw := &responseWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rw, r)
		s.logRequest(r, redactPath(r.URL.Path), rw.status, start)
	})
}

// logRequest writes the access log line. Never log query strings
// (approval_token and poll_token travel there), nor the tokens of signed
// object paths (see redactPath).
func (s *Server) logRequest(r *http.Request, path string, status int, start time.Time) {
	s.deps.Log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
		slog.String("method", r.Method), slog.String("path", path),
		slog.Int("status", status), slog.Int64("duration_us", time.Since(start).Microseconds()))
}

// responseWriter records the status, gives JSON a charset, and turns the
// router's plain-text 404/405 answers into JSON errors.
type responseWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	swallow     bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	w.status = code
	h := w.Header()
	// Every 503 is temporary (a failover, a restarting database, a full
	// pool): tell clients when to come back.
	if code == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", "2")
	}
	ct := h.Get("Content-Type")
	if ct == "application/json" {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	muxAnswer := (code == http.StatusMethodNotAllowed || code == http.StatusNotFound) && strings.HasPrefix(ct, "text/plain")
	// No API handler redirects: a redirect is ServeMux's (e.g. /v1 -> /v1/),
	// and the API answers JSON, never HTML.
	redirect := code >= 300 && code < 400 && code != http.StatusNotModified && h.Get("Location") != ""
	if muxAnswer || redirect {
		if redirect {
			code = http.StatusNotFound
			w.status = code
			h.Del("Location")
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Del("X-Content-Type-Options")
		w.ResponseWriter.WriteHeader(code)
		msg := "not found"
		if code == http.StatusMethodNotAllowed {
			msg = "method not allowed"
		}
		fmt.Fprintf(w.ResponseWriter, "{\"error\":%q}\n", msg)
		w.swallow = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if s.deps.Ready != nil {
		if err := s.deps.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// maxPage is the largest page of every list with a ?limit= parameter.
const maxPage = 100

// pageLimit is the row count of a list with a ?limit= parameter documented
// as "default 25, max 100" (0 is the default; huma refuses negatives).
func pageLimit(limit int) int {
	if limit == 0 {
		return 25
	}
	return min(limit, maxPage)
}
