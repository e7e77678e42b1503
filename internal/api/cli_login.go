package api

import (
	"context"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// CLILoginStartBody is POST /v1/cli/login/sessions (every field optional;
// "" means not given).
type CLILoginStartBody = wire.CLILoginStartBody

// CLILoginStartInput wraps the optional body.
type CLILoginStartInput struct {
	Body *CLILoginStartBody `required:"false"`
}

// CLILoginStartOutput is the bare start response.
type CLILoginStartOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		SessionID string    `json:"session_id"`
		PollToken string    `json:"poll_token"`
		ExpiresAt time.Time `json:"expires_at"`
		State     string    `json:"state"`
	}
}

// CLILoginPollInput is GET /v1/cli/login/sessions/{sessionID}.
type CLILoginPollInput struct {
	SessionID   string `path:"sessionID"`
	PollToken   string `header:"X-CapyDB-Poll-Token" doc:"the poll token from the start response"`
	PollTokenQS string `query:"poll_token" doc:"accepted for clients that cannot send the header"`
}

// CLILoginPollOutput is the bare poll response.
type CLILoginPollOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		SessionID        string     `json:"session_id"`
		State            string     `json:"state"`
		ExpiresAt        time.Time  `json:"expires_at"`
		AuthorizedAt     *time.Time `json:"authorized_at,omitempty"`
		OrganizationID   string     `json:"organization_id,omitempty"`
		OrganizationName string     `json:"organization_name,omitempty"`
		OrganizationSlug string     `json:"organization_slug,omitempty"`
		PlaintextAPIKey  string     `json:"plaintext_api_key,omitempty"`
	}
}

// CLILoginDetails is the approval page's read model (bare).
type CLILoginDetails struct {
	SessionID    string     `json:"session_id"`
	State        string     `json:"state"`
	ExpiresAt    time.Time  `json:"expires_at"`
	KeyName      string     `json:"key_name"`
	Scopes       []string   `json:"scopes"`
	Source       string     `json:"source"`
	DeviceName   *string    `json:"device_name,omitempty"`
	KeyExpiresAt *time.Time `json:"key_expires_at,omitempty"`
}

// CLILoginDetailsOutput wraps it.
type CLILoginDetailsOutput struct {
	Body CLILoginDetails
}

// CLILoginSessionPath names a device login.
type CLILoginSessionPath struct {
	SessionID string `path:"sessionID"`
}

// CLILoginApproveInput has no body (none or {}).
type CLILoginApproveInput struct {
	SessionID string    `path:"sessionID"`
	Body      *struct{} `required:"false"`
}

func toLoginDetails(l *store.LoginSession) CLILoginDetails {
	scopes := l.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return CLILoginDetails{SessionID: l.ID, State: l.State, ExpiresAt: l.ExpiresAt.UTC(), KeyName: l.KeyName,
		Scopes: scopes, Source: l.Source, DeviceName: l.DeviceName, KeyExpiresAt: utcp(l.KeyExpiresAt)}
}

func (s *Server) registerCLILogin() {
	tags := []string{"cli-login"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "startCliLoginSession", Method: http.MethodPost,
		Path: "/v1/cli/login/sessions", Anonymous: true}, RateLimit: auth.BucketLoginStart, Status: http.StatusCreated,
		Summary: "Start a device login", Tags: tags}, s.startCLILogin)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "pollCliLoginSession", Method: http.MethodGet,
		Path: "/v1/cli/login/sessions/{sessionID}", Anonymous: true}, RateLimit: auth.BucketLoginPoll,
		Summary: "Poll a device login (the new key is returned exactly once)", Tags: tags, Errors: []int{http.StatusGone}},
		func(ctx context.Context, in *CLILoginPollInput) (*CLILoginPollOutput, error) {
			token := in.PollToken
			if token == "" {
				token = in.PollTokenQS
			}
			l, plain, err := auth.PollLogin(ctx, s.deps.Store, in.SessionID, token)
			if err != nil {
				return nil, s.loginError(ctx, err)
			}
			out := &CLILoginPollOutput{CacheControl: "no-store"}
			out.Body.SessionID, out.Body.State, out.Body.ExpiresAt = l.ID, l.State, l.ExpiresAt.UTC()
			if l.State == "completed" && l.OrganizationID != nil {
				org, err := store.GetOrganization(ctx, s.deps.Store.Pool, *l.OrganizationID)
				if err != nil {
					return nil, s.fail(ctx, err, "login session not found")
				}
				out.Body.AuthorizedAt = utcp(l.AuthorizedAt)
				out.Body.OrganizationID, out.Body.OrganizationName, out.Body.OrganizationSlug = org.ID, org.Name, org.Slug
				out.Body.PlaintextAPIKey = plain
			}
			return out, nil
		})
	rule := AccessRule{Scope: auth.ScopeAPIKeysWrite, OrgKeyOnly: true, AdminOnly: true}
	details := rule
	details.OperationID, details.Method, details.Path = "getCliLoginSessionDetails", http.MethodGet, "/v1/cli/login/sessions/{sessionID}/details"
	register(s, opSpec{AccessRule: details, Summary: "Read a pending device login (approval page)", Tags: tags,
		Errors: []int{http.StatusConflict, http.StatusGone}},
		func(ctx context.Context, in *CLILoginSessionPath) (*CLILoginDetailsOutput, error) {
			l, err := auth.GetLogin(ctx, s.deps.Store, in.SessionID)
			if err != nil {
				return nil, s.loginError(ctx, err)
			}
			return &CLILoginDetailsOutput{Body: toLoginDetails(l)}, nil
		})
	approve := rule
	approve.OperationID, approve.Method, approve.Path = "approveCliLoginSession", http.MethodPost, "/v1/cli/login/sessions/{sessionID}/approve"
	register(s, opSpec{AccessRule: approve, Summary: "Approve a device login for the caller's organization", Tags: tags,
		Errors: []int{http.StatusGone}},
		func(ctx context.Context, in *CLILoginApproveInput) (*CLILoginDetailsOutput, error) {
			l, err := auth.ApproveLogin(ctx, s.deps.Store, in.SessionID, principal(ctx))
			if err != nil {
				return nil, s.loginError(ctx, err)
			}
			return &CLILoginDetailsOutput{Body: toLoginDetails(l)}, nil
		})
}

func (s *Server) startCLILogin(ctx context.Context, in *CLILoginStartInput) (*CLILoginStartOutput, error) {
	var b CLILoginStartBody
	if in.Body != nil {
		b = *in.Body
	}
	r, err := validateLoginStart(b, time.Now())
	if err != nil {
		return nil, err
	}
	l, token, err := auth.StartLogin(ctx, s.deps.Store, r)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &CLILoginStartOutput{CacheControl: "no-store"}
	out.Body.SessionID, out.Body.PollToken, out.Body.ExpiresAt, out.Body.State = l.ID, token, l.ExpiresAt.UTC(), l.State
	return out, nil
}

func validateLoginStart(b CLILoginStartBody, now time.Time) (auth.LoginRequest, error) {
	r := auth.LoginRequest{Source: b.Source}
	switch b.Source {
	case "":
		r.Source = auth.KeySourceCLI
	case auth.KeySourceCLI, auth.KeySourceAgent:
	default:
		return r, errorf(http.StatusBadRequest, "source must be cli or agent")
	}
	if utf8.RuneCountInString(b.Name) > 100 {
		return r, errorf(http.StatusBadRequest, "name must be at most 100 characters")
	}
	if err := checkKeyNames(b.Name, b.DeviceName); err != nil {
		return r, err
	}
	r.KeyName = b.Name
	if r.KeyName == "" {
		r.KeyName = "CapyDB CLI"
		if r.Source == auth.KeySourceAgent {
			r.KeyName = "CapyDB Agent"
		}
	}
	if b.DeviceName != "" {
		r.DeviceName = &b.DeviceName
	}
	if b.ExpiresAt != nil {
		if !b.ExpiresAt.After(now) || b.ExpiresAt.After(now.Add(365*24*time.Hour)) {
			return r, errorf(http.StatusBadRequest, "expires_at must be in the future and at most 365 days away")
		}
		r.KeyExpiresAt = b.ExpiresAt
	}
	r.Scopes = []string{}
	for _, sc := range b.Scopes {
		if !auth.ValidScope(sc) {
			return r, errorf(http.StatusBadRequest, "scopes: unknown scope %q", sc)
		}
		if !contains(r.Scopes, sc) {
			r.Scopes = append(r.Scopes, sc)
		}
	}
	return r, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// loginError maps device-login errors to statuses.
func (s *Server) loginError(ctx context.Context, err error) error {
	var ue *auth.UngrantableError
	switch {
	case errors.Is(err, auth.ErrLoginNotFound):
		return errorf(http.StatusNotFound, "login session not found")
	case errors.Is(err, auth.ErrLoginExpired):
		return errorf(http.StatusGone, "login session expired")
	case errors.Is(err, auth.ErrLoginApproved):
		return errorf(http.StatusConflict, "login session is already approved")
	case errors.As(err, &ue):
		return errorf(http.StatusForbidden, "%s", ue.Error())
	}
	return s.fail(ctx, err, "login session not found")
}
