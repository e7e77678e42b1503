package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/authsync"
	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/integrations"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// syncEnvPayload is an integration.sync_env job: which platform to push to.
type syncEnvPayload struct {
	Provider string `json:"provider"`
	// PreviewID and Branch: push that preview's URLs scoped to the branch
	// (deployment hooks) instead of the project's to every environment.
	PreviewID string `json:"preview_id,omitempty"`
	Branch    string `json:"branch,omitempty"`
}

// Env var names pushed to Vercel and Netlify (PRODUCT.md §4.4).
const (
	EnvDatabaseURL         = "DATABASE_URL"
	EnvDatabaseURLUnpooled = "DATABASE_URL_UNPOOLED"
)

// integrationJob loads what both integration jobs need: the ready project,
// its integration with one provider and the integration's secrets. A
// disconnected integration or a project that is gone fails permanently.
func (s *Service) integrationJob(ctx context.Context, j *queue.Job, provider string) (*store.Project, *store.Integration, integrationSecrets, error) {
	var sec integrationSecrets
	p, err := s.liveProject(ctx, j)
	if err != nil {
		return nil, nil, sec, err
	}
	if p.State != store.ProjectReady {
		return nil, nil, sec, queue.PermanentError(fmt.Errorf("project is not ready (state %s)", p.State))
	}
	i, err := store.GetIntegration(ctx, s.Store.Pool, p.ID, provider)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, sec, queue.PermanentError(fmt.Errorf("the %s integration was disconnected", provider))
	}
	if err != nil {
		return nil, nil, sec, err
	}
	sec, err = s.openSecrets(i)
	return p, i, sec, err
}

// providerFailure records a refused credential on the integration (state
// error) and makes it permanent; other failures are retried.
func (s *Service) providerFailure(ctx context.Context, i *store.Integration, err error) error {
	var ae *integrations.APIError
	if errors.As(err, &ae) && ae.Rejected() {
		if uerr := store.SetIntegrationStatus(ctx, s.Store.Pool, i.ID, store.IntegrationError, map[string]any{"last_error": ae.Error()}); uerr != nil {
			return uerr
		}
		return queue.PermanentError(err)
	}
	return err
}

type syncEnvHandler struct{ s *Service }

// Run pushes DATABASE_URL (pooled) and DATABASE_URL_UNPOOLED (direct) to
// every environment of the connected Vercel project or Netlify site.
func (h *syncEnvHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	s := h.s
	var in syncEnvPayload
	if err := j.DecodePayload(&in); err != nil {
		return nil, queue.PermanentError(err)
	}
	p, i, sec, err := s.integrationJob(ctx, j, in.Provider)
	if err != nil {
		return nil, err
	}
	if in.PreviewID != "" {
		rep.Secret(sec.Token)
		return nil, s.pushBranch(ctx, i, sec, in, rep)
	}
	c, err := store.GetCluster(ctx, s.Store.Pool, p.ClusterID)
	if err != nil {
		return nil, err
	}
	conn, err := s.ConnectionFor(p, c)
	if err != nil {
		return nil, err
	}
	rep.Secret(sec.Token, conn.DirectURL, conn.PooledURL)
	switch in.Provider {
	case ProviderVercel:
		team, _ := i.Config["team_id"].(string)
		all := []string{"production", "preview", "development"}
		err = s.cfg.Integrations.NewVercel(sec.Token, team).UpsertEnv(ctx, deref(i.ExternalID), []integrations.VercelEnv{
			{Key: EnvDatabaseURL, Value: conn.PooledURL, Type: "encrypted", Target: all},
			{Key: EnvDatabaseURLUnpooled, Value: conn.DirectURL, Type: "encrypted", Target: all},
		})
	case ProviderNetlify:
		n := s.cfg.Integrations.NewNetlify(sec.Token)
		var site *integrations.NetlifySite
		if site, err = n.Site(ctx, deref(i.ExternalID)); err == nil {
			if err = n.SetEnv(ctx, site, EnvDatabaseURL, conn.PooledURL); err == nil {
				err = n.SetEnv(ctx, site, EnvDatabaseURLUnpooled, conn.DirectURL)
			}
		}
	default:
		return nil, queue.PermanentError(fmt.Errorf("cannot push env vars to %q", in.Provider))
	}
	if err != nil {
		return nil, s.providerFailure(ctx, i, err)
	}
	return nil, store.SetIntegrationStatus(ctx, s.Store.Pool, i.ID, store.IntegrationActive,
		map[string]any{"last_synced_at": time.Now().UTC().Format(time.RFC3339), "last_error": nil})
}

type clerkBackfillHandler struct{ s *Service }

// Run copies every Clerk user into capydb_auth.users, a page per
// transaction (idempotent upserts: a retry starts over harmlessly).
func (h *clerkBackfillHandler) Run(ctx context.Context, j *queue.Job, rep *queue.Reporter) (any, error) {
	s := h.s
	p, i, sec, err := s.integrationJob(ctx, j, ProviderClerk)
	if err != nil {
		return nil, err
	}
	rep.Secret(sec.SecretKey)
	conn, err := s.OpenProjectSession(ctx, p, "capydb-authsync")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := authsync.EnsureSchema(ctx, conn); err != nil {
		return nil, err
	}
	if err := rep.Progress(ctx, map[string]any{"phase": "backfill"}); err != nil {
		return nil, err
	}
	clerk := s.cfg.Integrations.NewClerk(sec.SecretKey)
	for offset := 0; ; offset += integrations.ClerkPage {
		page, err := clerk.ListUsers(ctx, integrations.ClerkPage, offset)
		if err != nil {
			return nil, s.providerFailure(ctx, i, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, raw := range page {
				u, err := authsync.ParseUser(raw)
				if err != nil {
					return queue.PermanentError(fmt.Errorf("Clerk user %d: %w", offset, err))
				}
				if err := authsync.Upsert(ctx, tx, u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(page) < integrations.ClerkPage {
			break
		}
	}
	return nil, store.SetIntegrationStatus(ctx, s.Store.Pool, i.ID, store.IntegrationActive,
		map[string]any{"backfilled_at": time.Now().UTC().Format(time.RFC3339), "last_error": nil})
}

// AuthSignature is what an auth receiver got to prove the sender.
type AuthSignature struct {
	Svix          integrations.SvixHeaders // Clerk
	Authorization string                   // Auth0
	BetterAuth    string                   // X-Better-Auth-Signature
}

// ErrReceiverNotFound is a receiver for a project that does not exist or
// has no such integration (404).
var ErrReceiverNotFound = domainerr.New(domainerr.NotFound, "no such project or integration")

// receiverIntegration finds what an inbound delivery is for: a live,
// non-ephemeral project, its integration with provider, and the
// integration's secrets; ErrReceiverNotFound when either is missing.
func (s *Service) receiverIntegration(ctx context.Context, projectID, provider string) (*store.Project, *store.Integration, integrationSecrets, error) {
	p, err := store.GetProjectAny(ctx, s.Store.Pool, projectID)
	if errors.Is(err, store.ErrNotFound) || err == nil && (p.DeletedAt != nil || p.OrganizationID == store.EphemeralOrgID) {
		return nil, nil, integrationSecrets{}, ErrReceiverNotFound
	}
	if err != nil {
		return nil, nil, integrationSecrets{}, err
	}
	i, err := store.GetIntegration(ctx, s.Store.Pool, p.ID, provider)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, integrationSecrets{}, ErrReceiverNotFound
	}
	if err != nil {
		return nil, nil, integrationSecrets{}, err
	}
	sec, err := s.openSecrets(i)
	return p, i, sec, err
}

// ReceiveAuthEvent verifies and applies one user event of Clerk, Auth0 or
// Better Auth. Errors: integrations.ErrSignature (401, nothing written),
// authsync.ErrInvalid (400), ErrReceiverNotFound (404), Unavailable (503,
// the provider retries) when the project database cannot take it now.
func (s *Service) ReceiveAuthEvent(ctx context.Context, provider, projectID string, sig AuthSignature, body []byte) error {
	p, _, sec, err := s.receiverIntegration(ctx, projectID, provider)
	if err != nil {
		return err
	}
	if sec.WebhookSigningSecret == "" {
		return fmt.Errorf("%w: no webhook signing secret is configured for this integration", integrations.ErrSignature)
	}
	switch provider {
	case ProviderClerk:
		err = integrations.VerifySvix(sec.WebhookSigningSecret, sig.Svix, body, time.Now())
	case ProviderAuth0:
		err = integrations.VerifySharedSecret(sec.WebhookSigningSecret, sig.Authorization)
	case ProviderBetterAuth:
		err = integrations.VerifyBetterAuth(sec.WebhookSigningSecret, sig.BetterAuth, body)
	default:
		return ErrReceiverNotFound
	}
	if err != nil {
		return err
	}
	event, user, ignore, err := authsync.ParseEvent(provider == ProviderClerk, body)
	if err != nil || ignore {
		return err
	}
	if p.State != store.ProjectReady {
		return domainerr.Errorf(domainerr.Unavailable, "the project database is %s; deliver the event again later", p.State)
	}
	conn, err := s.OpenProjectSession(ctx, p, "capydb-authsync")
	if err != nil {
		return domainerr.Errorf(domainerr.Unavailable, "the project database is not reachable; deliver the event again later")
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return authsync.Apply(ctx, conn, event, user, time.Now())
}
