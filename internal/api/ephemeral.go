package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
)

// Ephemeral databases (API.md §3.26, docs/ephemeral.md): off unless the
// server runs with --ephemeral-databases.

// EphemeralConfig turns ephemeral databases on and sets the cap.
type EphemeralConfig struct {
	Enabled bool
	// Cap is the number of unclaimed ephemeral databases per client address
	// (or per organization with a key); 0 = lifecycle.DefaultEphemeralCap.
	Cap int
}

// EphemeralDatabase is the wire form (API.md §4.19).
type EphemeralDatabase struct {
	ProjectID       string    `json:"project_id"`
	Name            string    `json:"name"`
	State           string    `json:"state" enum:"provisioning,ready,failed"`
	Region          string    `json:"region"`
	PostgresVersion string    `json:"postgres_version"`
	PostgresChannel string    `json:"postgres_channel,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	ExpiresAt       time.Time `json:"expires_at"`
}

// EphemeralCreateBody is EphemeralDatabaseCreateRequest.
type EphemeralCreateBody struct {
	Name            string `json:"name,omitempty" maxLength:"64"`
	PostgresVersion string `json:"postgres_version,omitempty"`
	Region          string `json:"region,omitempty"`
}

// EphemeralCreateInput is POST /v1/ephemeral-databases.
type EphemeralCreateInput struct {
	Body *EphemeralCreateBody `required:"false"`
}

// EphemeralCreatedOutput is the bare EphemeralDatabaseCreated.
type EphemeralCreatedOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		ClaimToken        string             `json:"claim_token"`
		ClaimURL          string             `json:"claim_url"`
		EphemeralDatabase *EphemeralDatabase `json:"ephemeral_database"`
	}
}

// EphemeralTokenInput carries the claim token header.
type EphemeralTokenInput struct {
	ProjectID  string `path:"projectID"`
	ClaimToken string `header:"X-CapyDB-Claim-Token" doc:"the claim token returned at creation"`
}

// EphemeralDatabaseDetails is the bare body of GET; the document makes
// connections ConnectionInfo|null (typeDocument: huma has no nullable refs).
type EphemeralDatabaseDetails struct {
	EphemeralDatabase *EphemeralDatabase `json:"ephemeral_database"`
	Connections       *ConnectionInfo    `json:"connections" doc:"null until the database is ready"`
}

// EphemeralDetailsOutput is GET /v1/ephemeral-databases/{projectID}.
type EphemeralDetailsOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         EphemeralDatabaseDetails
}

// EphemeralClaimInput is POST /v1/ephemeral-databases/{projectID}/claim.
type EphemeralClaimInput struct {
	ProjectID string `path:"projectID"`
	Body      struct {
		ClaimToken string `json:"claim_token"`
	}
}

type ephemeralCallerKey struct{}

// ephemeralCaller is what the gate of the anonymous routes learned.
type ephemeralCaller struct{ owner, origin string }

const ephemeralOff = "ephemeral databases are not enabled on this deployment"

func (s *Server) registerEphemeral() {
	tags := []string{"ephemeral"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createEphemeralDatabase", Method: http.MethodPost,
		Path: "/v1/ephemeral-databases", Anonymous: true}, Status: http.StatusCreated,
		Summary: "Create an ephemeral database (no account needed; a bearer key makes the cap count per organization)", Tags: tags,
		Errors: []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusTooManyRequests}, Middleware: s.ephemeralGate(true)},
		s.createEphemeral)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getEphemeralDatabase", Method: http.MethodGet,
		Path: "/v1/ephemeral-databases/{projectID}", Anonymous: true},
		Summary: "Read an ephemeral database with its claim token", Tags: tags, Middleware: s.ephemeralGate(false)}, s.getEphemeral)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "destroyEphemeralDatabase", Method: http.MethodDelete,
		Path: "/v1/ephemeral-databases/{projectID}", Anonymous: true}, Status: http.StatusNoContent,
		Summary: "Destroy an ephemeral database now with its claim token", Tags: tags, Middleware: s.ephemeralGate(false)}, s.destroyEphemeral)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "claimEphemeralDatabase", Method: http.MethodPost,
		Path: "/v1/ephemeral-databases/{projectID}/claim", Scope: auth.ScopeProjectsWrite, OrgKeyOnly: true, AdminOnly: true},
		Summary: "Claim an ephemeral database into the caller's organization", Tags: tags}, s.claimEphemeral)
}

// ephemeralGate, on create, works out whom the cap counts: the organization of a valid key, else the client
// address. A key that is sent but invalid is 401.
func (s *Server) ephemeralGate(create bool) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if !s.deps.Ephemeral.Enabled {
			next(ctx) // the handlers answer 404, after input validation (400 first)
			return
		}
		if create && s.limited(ctx, auth.BucketEphemeralCreate) {
			return // API.md §1.11: 10 creations per hour per client address
		}
		c := ephemeralCaller{owner: "addr:" + s.clientAddr(ctx)}
		if create && (ctx.Header("Authorization") != "" || ctx.Header("X-API-Key") != "") {
			p, status, msg := s.authenticate(ctx)
			if p == nil {
				_ = huma.WriteErr(s.api, ctx, status, msg)
				return
			}
			c.owner = "org:" + p.OrganizationID
		}
		scheme := "http"
		if ctx.TLS() != nil {
			scheme = "https"
		}
		c.origin = scheme + "://" + ctx.Host()
		next(huma.WithValue(ctx, ephemeralCallerKey{}, c))
	}
}

func toEphemeral(p *store.Project, c *store.Cluster, expires time.Time) *EphemeralDatabase {
	e := &EphemeralDatabase{ProjectID: p.ID, Name: p.Name, State: p.State, PostgresVersion: p.PostgresVersion,
		PostgresChannel: "stable", CreatedAt: p.CreatedAt.UTC(), ExpiresAt: expires.UTC()}
	if e.State != store.ProjectReady && e.State != store.ProjectFailed {
		e.State = store.ProjectProvisioning
	}
	if c != nil {
		e.Region = c.Region
	}
	return e
}

func (s *Server) createEphemeral(ctx context.Context, in *EphemeralCreateInput) (*EphemeralCreatedOutput, error) {
	if !s.deps.Ephemeral.Enabled {
		return nil, errorf(http.StatusNotFound, ephemeralOff)
	}
	caller, _ := ctx.Value(ephemeralCallerKey{}).(ephemeralCaller)
	b := EphemeralCreateBody{}
	if in.Body != nil {
		b = *in.Body
	}
	if strings.TrimSpace(b.Name) == "" {
		b.Name = "ephemeral"
	}
	req, err := lifecycle.CheckProjectRequest(lifecycle.ProjectRequest{Name: b.Name, Environment: lifecycle.EnvNonProduction})
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	cluster, err := s.deps.Lifecycle.Place(ctx, b.Region, "", b.PostgresVersion)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	limit := s.deps.Ephemeral.Cap
	if limit <= 0 {
		limit = lifecycle.DefaultEphemeralCap
	}
	p, _, token, expires, err := s.deps.Lifecycle.CreateEphemeral(ctx, caller.owner, limit, lifecycle.CreateProjectParams{
		Name: req.Name, ClusterID: cluster.ID, PostgresVersion: cluster.PostgresVersion})
	var capErr *lifecycle.EphemeralCapError
	if errors.As(err, &capErr) {
		e := errorf(http.StatusTooManyRequests, "%s", capErr.Error())
		e.headers = http.Header{"Retry-After": {auth.RetryAfterSeconds(capErr.RetryAfter)}}
		return nil, e
	}
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &EphemeralCreatedOutput{CacheControl: "no-store"}
	out.Body.ClaimToken = token
	out.Body.ClaimURL = caller.origin + "/dashboard/claim/" + url.PathEscape(p.ID) + "?token=" + url.QueryEscape(token)
	out.Body.EphemeralDatabase = toEphemeral(p, cluster, expires)
	return out, nil
}

func (s *Server) getEphemeral(ctx context.Context, in *EphemeralTokenInput) (*EphemeralDetailsOutput, error) {
	if !s.deps.Ephemeral.Enabled {
		return nil, errorf(http.StatusNotFound, "ephemeral database not found")
	}
	e, p, err := s.deps.Lifecycle.EphemeralByToken(ctx, in.ProjectID, in.ClaimToken)
	if err != nil || in.ClaimToken == "" {
		return nil, s.fail(ctx, orNotFound(err), "ephemeral database not found")
	}
	c, _ := store.GetCluster(ctx, s.deps.Store.Pool, p.ClusterID)
	out := &EphemeralDetailsOutput{CacheControl: "no-store"}
	out.Body.EphemeralDatabase = toEphemeral(p, c, e.ExpiresAt)
	if p.State == store.ProjectReady && c != nil {
		conn, err := s.deps.Lifecycle.ConnectionFor(p, c)
		if err != nil {
			return nil, s.fail(ctx, err, "")
		}
		out.Body.Connections = &ConnectionInfo{Username: conn.Username, DirectURL: conn.DirectURL, PooledURL: conn.PooledURL, SessionURL: conn.SessionURL}
	}
	return out, nil
}

func (s *Server) destroyEphemeral(ctx context.Context, in *EphemeralTokenInput) (*struct{}, error) {
	if !s.deps.Ephemeral.Enabled || in.ClaimToken == "" {
		return nil, errorf(http.StatusNotFound, "ephemeral database not found")
	}
	if err := s.deps.Lifecycle.DestroyEphemeral(ctx, in.ProjectID, in.ClaimToken); err != nil {
		return nil, s.fail(ctx, err, "ephemeral database not found")
	}
	return nil, nil
}

func (s *Server) claimEphemeral(ctx context.Context, in *EphemeralClaimInput) (*ProjectOutput, error) {
	if !s.deps.Ephemeral.Enabled {
		return nil, errorf(http.StatusNotFound, "ephemeral database not found")
	}
	if in.Body.ClaimToken == "" {
		return nil, errorf(http.StatusBadRequest, "claim_token is required")
	}
	pr := principal(ctx)
	p, err := s.deps.Lifecycle.ClaimEphemeral(ctx, pr.OrganizationID, in.ProjectID, in.Body.ClaimToken, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "ephemeral database not found")
	}
	org, err := store.GetOrganization(ctx, s.deps.Store.Pool, pr.OrganizationID)
	if err != nil {
		return nil, s.fail(ctx, err, "organization not found")
	}
	c, _ := store.GetCluster(ctx, s.deps.Store.Pool, p.ClusterID)
	out := &ProjectOutput{}
	out.Body.Project = toProject(p, org, c)
	return out, nil
}

func orNotFound(err error) error {
	if err == nil {
		return store.ErrNotFound
	}
	return err
}
