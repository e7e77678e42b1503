package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/authsync"
	"github.com/capydb/capydb/internal/integrations"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
)

// Integrations (API.md §3.24, docs/integrations.md): project routes to
// connect providers, and the public receivers whose credential is the
// provider's signature.

// ProjectIntegration is the wire form (API.md §4.17). config never holds secrets.
type ProjectIntegration struct {
	ID             string         `json:"id"`
	OrganizationID string         `json:"organization_id"`
	ProjectID      string         `json:"project_id"`
	Provider       string         `json:"provider"`
	State          string         `json:"state"`
	HasCredentials bool           `json:"has_credentials"`
	ExternalID     string         `json:"external_id,omitempty"`
	Config         map[string]any `json:"config"`
	CreatedAt      time.Time      `json:"created_at"`
	UpdatedAt      time.Time      `json:"updated_at"`
}

// IntegrationCredentials are the secrets of PutIntegrationRequest.
type IntegrationCredentials struct {
	SecretKey            string `json:"secret_key,omitempty" doc:"Clerk secret key (sk_live_… or sk_test_…)"`
	WebhookSigningSecret string `json:"webhook_signing_secret,omitempty" doc:"Clerk whsec_… secret, or the Auth0 / Better Auth shared secret"`
}

// PutIntegrationRequest is PUT …/integrations/{provider}.
type PutIntegrationRequest struct {
	Credentials *IntegrationCredentials `json:"credentials,omitempty"`
	Config      map[string]any          `json:"config,omitempty" doc:"reserved: {} or absent"`
}

// IntegrationPath names one provider of a project.
type IntegrationPath struct {
	ProjectID string `path:"projectID"`
	Provider  string `path:"provider" maxLength:"32"`
}

// PutIntegrationInput wraps PutIntegrationRequest.
type PutIntegrationInput struct {
	IntegrationPath
	Body *PutIntegrationRequest `required:"false"`
}

// ConnectVercelRequest is POST …/integrations/vercel/connect.
type ConnectVercelRequest struct {
	Token           string `json:"token" minLength:"1" maxLength:"512"`
	VercelProjectID string `json:"vercel_project_id" minLength:"1" maxLength:"200" doc:"Vercel project id (prj_…) or name"`
	TeamID          string `json:"team_id,omitempty" maxLength:"200"`
	PreviewBranches bool   `json:"preview_branches,omitempty"`
}

// ConnectNetlifyRequest is POST …/integrations/netlify/connect.
type ConnectNetlifyRequest struct {
	Token           string `json:"token" minLength:"1" maxLength:"512"`
	SiteID          string `json:"site_id" minLength:"1" maxLength:"200"`
	PreviewBranches bool   `json:"preview_branches,omitempty"`
}

// ConnectVercelInput wraps ConnectVercelRequest.
type ConnectVercelInput struct {
	ProjectID string `path:"projectID"`
	Body      ConnectVercelRequest
}

// ConnectNetlifyInput wraps ConnectNetlifyRequest.
type ConnectNetlifyInput struct {
	ProjectID string `path:"projectID"`
	Body      ConnectNetlifyRequest
}

// IntegrationsOutput is GET …/integrations.
type IntegrationsOutput struct {
	Body struct {
		Integrations []ProjectIntegration `json:"integrations"`
	}
}

// IntegrationOutput is PUT …/integrations/{provider} and the connect routes
// (job: the backfill or the first env push; absent when none was queued).
type IntegrationOutput struct {
	Body struct {
		Integration ProjectIntegration `json:"integration"`
		Job         *Job               `json:"job,omitempty"`
	}
}

// DeletedIntegrationOutput is {"deleted": true}.
type DeletedIntegrationOutput struct {
	Body struct {
		Deleted bool `json:"deleted"`
	}
}

// ReceiverInput is an inbound delivery: the raw body is what the signature covers.
type ReceiverInput struct {
	ProjectID           string `path:"projectID"`
	SvixID              string `header:"svix-id" doc:"Clerk (Svix) message id"`
	SvixTimestamp       string `header:"svix-timestamp" doc:"Clerk (Svix) Unix timestamp"`
	SvixSignature       string `header:"svix-signature" doc:"Clerk (Svix) signatures: v1,<base64>"`
	Authorization       string `header:"Authorization" doc:"Auth0: the shared secret (a Bearer prefix is tolerated)"`
	BetterAuthSignature string `header:"X-Better-Auth-Signature" doc:"Better Auth: hex HMAC-SHA256 of the body"`
	VercelSignature     string `header:"x-vercel-signature" doc:"Vercel: hex HMAC-SHA1 of the body"`
	NetlifySignature    string `header:"X-Webhook-Signature" doc:"Netlify: HS256 JWS with the body's sha256"`
	RawBody             []byte `contentType:"application/json"`
}

// ReceiverOutput is {"ok": true}.
type ReceiverOutput struct {
	Body struct {
		OK bool `json:"ok"`
	}
}

type originKey struct{}

// withOrigin remembers scheme://host of the request: receiver URLs are
// absolute and name this server as the caller reached it.
func withOrigin(ctx huma.Context, next func(huma.Context)) {
	scheme := "http"
	if ctx.TLS() != nil {
		scheme = "https"
	}
	next(huma.WithValue(ctx, originKey{}, scheme+"://"+ctx.Host()))
}

// receiverURL is the absolute URL of a provider's receiver for a project.
func receiverURL(ctx context.Context, provider, projectID string) string {
	origin, _ := ctx.Value(originKey{}).(string)
	return origin + "/v1/integrations/" + strings.ReplaceAll(provider, "_", "-") + "/webhook/" + url.PathEscape(projectID)
}

func (s *Server) registerIntegrations() {
	tags := []string{"integrations"}
	p := "/v1/projects/{projectID}/integrations"
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listProjectIntegrations", Method: http.MethodGet, Path: p,
		Scope: auth.ScopeProjectsRead}, Summary: "List the project's integrations (never their secrets)", Tags: tags}, s.listIntegrations)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "putProjectIntegration", Method: http.MethodPut, Path: p + "/{provider}",
		Scope: auth.ScopeProjectsWrite}, Errors: []int{http.StatusServiceUnavailable}, Middleware: withOrigin,
		Summary: "Connect or update Clerk, Auth0 or Better Auth user sync (creates capydb_auth.users; Clerk: backfill job)", Tags: tags},
		s.putIntegration)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "deleteProjectIntegration", Method: http.MethodDelete, Path: p + "/{provider}",
		Scope: auth.ScopeProjectsWrite}, Summary: "Disconnect an integration (its secrets are deleted; capydb_auth.users stays)", Tags: tags},
		s.deleteIntegration)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "connectVercelIntegration", Method: http.MethodPost, Path: p + "/vercel/connect",
		Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted, Errors: []int{http.StatusServiceUnavailable}, Middleware: withOrigin,
		Summary: "Connect a Vercel project and push DATABASE_URL / DATABASE_URL_UNPOOLED (job integration.sync_env)", Tags: tags},
		s.connectVercel)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "connectNetlifyIntegration", Method: http.MethodPost, Path: p + "/netlify/connect",
		Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted, Errors: []int{http.StatusServiceUnavailable}, Middleware: withOrigin,
		Summary: "Connect a Netlify site and push DATABASE_URL / DATABASE_URL_UNPOOLED (job integration.sync_env)", Tags: tags},
		s.connectNetlify)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "syncProjectIntegration", Method: http.MethodPost, Path: p + "/{provider}/sync",
		Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Push the env vars to Vercel or Netlify again (job integration.sync_env)", Tags: tags}, s.syncIntegration)

	recv := func(op, slug, provider, summary string, addition bool) {
		register(s, opSpec{AccessRule: AccessRule{OperationID: op, Method: http.MethodPost,
			Path: "/v1/integrations/" + slug + "/webhook/{projectID}", Anonymous: true}, RateLimit: auth.BucketIntegrationReceiver,
			Errors:   []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusTooManyRequests, http.StatusServiceUnavailable},
			Addition: addition, Summary: summary, Tags: tags, RawJSONBody: true},
			func(ctx context.Context, in *ReceiverInput) (*ReceiverOutput, error) {
				return s.receive(ctx, provider, in)
			})
	}
	recv("receiveClerkWebhook", "clerk", lifecycle.ProviderClerk, "Clerk user events, verified by their Svix signature", false)
	recv("receiveAuth0Webhook", "auth0", lifecycle.ProviderAuth0, "Auth0 user events, verified by the shared secret in Authorization", false)
	recv("receiveBetterAuthWebhook", "better-auth", lifecycle.ProviderBetterAuth, "Better Auth user events, verified by X-Better-Auth-Signature", false)
	recv("receiveVercelWebhook", "vercel", lifecycle.ProviderVercel,
		"Vercel deployment.created: a branch-<slug> clone preview and branch-scoped env vars (x-vercel-signature)", true)
	recv("receiveNetlifyWebhook", "netlify", lifecycle.ProviderNetlify,
		"Netlify deploy_building: a branch-<slug> clone preview and branch-context env vars (X-Webhook-Signature)", true)
}

func (s *Server) toIntegration(i *store.Integration) ProjectIntegration {
	out := ProjectIntegration{ID: i.ID, OrganizationID: i.OrganizationID, ProjectID: i.ProjectID, Provider: i.Provider,
		State: i.State, HasCredentials: s.deps.Lifecycle.HasCredentials(i), Config: i.Config,
		CreatedAt: i.CreatedAt.UTC(), UpdatedAt: i.UpdatedAt.UTC()}
	if i.ExternalID != nil {
		out.ExternalID = *i.ExternalID
	}
	if out.Config == nil {
		out.Config = map[string]any{}
	}
	return out
}

func (s *Server) listIntegrations(ctx context.Context, in *ProjectPath) (*IntegrationsOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	list, err := store.ListIntegrations(ctx, s.deps.Store.Pool, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &IntegrationsOutput{}
	out.Body.Integrations = []ProjectIntegration{}
	for _, i := range list {
		out.Body.Integrations = append(out.Body.Integrations, s.toIntegration(i))
	}
	return out, nil
}

func (s *Server) putIntegration(ctx context.Context, in *PutIntegrationInput) (*IntegrationOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	var cred lifecycle.AuthCredentials
	if in.Body != nil {
		if len(in.Body.Config) > 0 {
			return nil, errorf(http.StatusBadRequest, "config is reserved: send {} or leave it out")
		}
		if in.Body.Credentials != nil {
			cred = lifecycle.AuthCredentials{SecretKey: in.Body.Credentials.SecretKey, WebhookSigningSecret: in.Body.Credentials.WebhookSigningSecret}
		}
	}
	provider := strings.ToLower(in.Provider)
	i, job, err := s.deps.Lifecycle.PutAuthIntegration(ctx, p, provider, cred, receiverURL(ctx, provider, p.ID), actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &IntegrationOutput{}
	out.Body.Integration = s.toIntegration(i)
	if job != nil {
		out.Body.Job = toJob(job)
	}
	return out, nil
}

func (s *Server) deleteIntegration(ctx context.Context, in *IntegrationPath) (*DeletedIntegrationOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	provider := strings.ToLower(in.Provider)
	if !slices.Contains(lifecycle.Providers, provider) {
		return nil, errorf(http.StatusBadRequest, "provider must be one of %s", strings.Join(lifecycle.Providers, ", "))
	}
	if err := s.deps.Lifecycle.DeleteIntegration(ctx, p, provider, actor(ctx)); err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &DeletedIntegrationOutput{}
	out.Body.Deleted = true
	return out, nil
}

func (s *Server) connectVercel(ctx context.Context, in *ConnectVercelInput) (*IntegrationOutput, error) {
	return s.connect(ctx, in.ProjectID, lifecycle.ProviderVercel, lifecycle.PlatformConnect{Token: in.Body.Token,
		Target: in.Body.VercelProjectID, TeamID: in.Body.TeamID, PreviewBranches: in.Body.PreviewBranches})
}

func (s *Server) connectNetlify(ctx context.Context, in *ConnectNetlifyInput) (*IntegrationOutput, error) {
	return s.connect(ctx, in.ProjectID, lifecycle.ProviderNetlify, lifecycle.PlatformConnect{Token: in.Body.Token,
		Target: in.Body.SiteID, PreviewBranches: in.Body.PreviewBranches})
}

func (s *Server) connect(ctx context.Context, projectID, provider string, c lifecycle.PlatformConnect) (*IntegrationOutput, error) {
	p, _, err := s.loadProject(ctx, projectID)
	if err != nil {
		return nil, err
	}
	connect := s.deps.Lifecycle.ConnectVercel
	if provider == lifecycle.ProviderNetlify {
		connect = s.deps.Lifecycle.ConnectNetlify
	}
	i, job, err := connect(ctx, p, c, receiverURL(ctx, provider, p.ID), actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &IntegrationOutput{}
	out.Body.Integration = s.toIntegration(i)
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) syncIntegration(ctx context.Context, in *IntegrationPath) (*JobOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.SyncIntegration(ctx, p, strings.ToLower(in.Provider), actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

// receive verifies and applies one inbound delivery. Nothing about the
// body or the signature is logged.
func (s *Server) receive(ctx context.Context, provider string, in *ReceiverInput) (*ReceiverOutput, error) {
	sig := lifecycle.AuthSignature{Svix: integrations.SvixHeaders{ID: in.SvixID, Timestamp: in.SvixTimestamp, Signature: in.SvixSignature},
		Authorization: in.Authorization, BetterAuth: in.BetterAuthSignature}
	var err error
	switch provider {
	case lifecycle.ProviderVercel:
		err = s.deps.Lifecycle.ReceiveDeployment(ctx, provider, in.ProjectID, in.VercelSignature, in.RawBody)
	case lifecycle.ProviderNetlify:
		err = s.deps.Lifecycle.ReceiveDeployment(ctx, provider, in.ProjectID, in.NetlifySignature, in.RawBody)
	default:
		err = s.deps.Lifecycle.ReceiveAuthEvent(ctx, provider, in.ProjectID, sig, in.RawBody)
	}
	switch {
	case err == nil:
		out := &ReceiverOutput{}
		out.Body.OK = true
		return out, nil
	case errors.Is(err, integrations.ErrSignature):
		return nil, errorf(http.StatusUnauthorized, "%s", err.Error())
	case errors.Is(err, authsync.ErrInvalid):
		return nil, errorf(http.StatusBadRequest, "%s", err.Error())
	}
	return nil, s.fail(ctx, err, "project not found")
}
