package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/authsync"
	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/integrations"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Integrations (API.md §3.24, PRODUCT.md §23, docs/integrations.md).

// Job types of integrations (wire strings fixed by API.md §5).
const (
	JobIntegrationSyncEnv       = "integration.sync_env"
	JobIntegrationClerkBackfill = "integration.clerk_backfill"
)

// Integration providers.
const (
	ProviderVercel     = "vercel"
	ProviderNetlify    = "netlify"
	ProviderClerk      = "clerk"
	ProviderAuth0      = "auth0"
	ProviderBetterAuth = "better_auth"
)

// Providers lists every provider a project can connect.
var Providers = []string{ProviderAuth0, ProviderBetterAuth, ProviderClerk, ProviderNetlify, ProviderVercel}

// minSharedSecret is the shortest Auth0 / Better Auth secret accepted: it
// is the only credential of a public route.
const minSharedSecret = 16

// integrationSecrets is what secrets_enc seals. Nothing here is ever
// returned, logged or put into a job.
type integrationSecrets struct {
	SecretKey            string `json:"secret_key,omitempty"`             // Clerk
	WebhookSigningSecret string `json:"webhook_signing_secret,omitempty"` // Clerk (whsec_), Auth0, Better Auth
	Token                string `json:"token,omitempty"`                  // Vercel, Netlify
	HookSecret           string `json:"hook_secret,omitempty"`            // signs the deployment hook we registered
}

func (s *Service) sealSecrets(sec integrationSecrets) ([]byte, error) {
	b, err := json.Marshal(sec)
	if err != nil {
		return nil, err
	}
	return s.Box.Seal(b), nil
}

func (s *Service) openSecrets(i *store.Integration) (integrationSecrets, error) {
	var sec integrationSecrets
	if len(i.SecretsEnc) == 0 {
		return sec, nil
	}
	b, err := s.Box.Open(i.SecretsEnc)
	if err != nil {
		return sec, fmt.Errorf("while decrypting the integration's secrets: %w", err)
	}
	return sec, json.Unmarshal(b, &sec)
}

// HasCredentials reports whether a token or secret is stored.
func (s *Service) HasCredentials(i *store.Integration) bool {
	sec, err := s.openSecrets(i)
	return err == nil && sec != integrationSecrets{}
}

// AuthCredentials are the credentials of PUT …/integrations/{provider}.
type AuthCredentials struct {
	SecretKey            string
	WebhookSigningSecret string
}

// providerError turns a provider's refusal into a 400 that quotes it, and
// anything else (network, 5xx) into a 503: the caller may try again.
func providerError(what string, err error) error {
	var ae *integrations.APIError
	if errors.As(err, &ae) && ae.Rejected() {
		return invalidf("%s: %s", what, ae.Error())
	}
	var de *domainerr.Error
	if errors.As(err, &de) {
		return err
	}
	return domainerr.Errorf(domainerr.Unavailable, "%s: %v", what, err)
}

// PutAuthIntegration connects or updates Clerk, Auth0 or Better Auth: it
// checks and seals the credentials, creates capydb_auth.users in the project
// database (as the tenant), and for a new Clerk secret key queues the
// backfill. receiverURL is the absolute URL of the provider's receiver.
func (s *Service) PutAuthIntegration(ctx context.Context, p *store.Project, provider string, cred AuthCredentials,
	receiverURL string, actor Actor) (*store.Integration, *queue.Job, error) {
	if provider != ProviderClerk && provider != ProviderAuth0 && provider != ProviderBetterAuth {
		return nil, nil, invalidf("provider must be clerk, auth0 or better_auth (vercel and netlify use their connect routes)")
	}
	if p.State != store.ProjectReady {
		return nil, nil, conflictf("project is not ready (state %s)", p.State)
	}
	existing, err := store.GetIntegration(ctx, s.Store.Pool, p.ID, provider)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, nil, err
	}
	sec := integrationSecrets{}
	cfg := map[string]any{}
	if existing != nil {
		if sec, err = s.openSecrets(existing); err != nil {
			return nil, nil, err
		}
		cfg = existing.Config
	}
	backfill := false
	switch provider {
	case ProviderClerk:
		if cred.WebhookSigningSecret != "" {
			if _, err := integrations.SvixKey(cred.WebhookSigningSecret); err != nil {
				return nil, nil, invalidf("credentials.webhook_signing_secret: %v", err)
			}
			sec.WebhookSigningSecret = cred.WebhookSigningSecret
		}
		if cred.SecretKey != "" {
			if !integrations.ValidClerkSecretKey(cred.SecretKey) {
				return nil, nil, invalidf("credentials.secret_key must be a Clerk secret key (sk_live_… or sk_test_…)")
			}
			if err := s.cfg.Integrations.NewClerk(cred.SecretKey).Check(ctx); err != nil {
				return nil, nil, providerError("Clerk rejected credentials.secret_key", err)
			}
			sec.SecretKey, backfill = cred.SecretKey, true
		} else if sec.SecretKey == "" {
			return nil, nil, invalidf("credentials.secret_key is required to connect Clerk")
		}
	default:
		if cred.SecretKey != "" {
			return nil, nil, invalidf("credentials.secret_key is only for clerk")
		}
		if cred.WebhookSigningSecret != "" {
			if len(cred.WebhookSigningSecret) < minSharedSecret {
				return nil, nil, invalidf("credentials.webhook_signing_secret must be at least %d characters", minSharedSecret)
			}
			sec.WebhookSigningSecret = cred.WebhookSigningSecret
		} else if sec.WebhookSigningSecret == "" {
			return nil, nil, invalidf("credentials.webhook_signing_secret is required")
		}
	}
	// The table first (as the tenant, idempotent): a receiver never finds
	// an integration without it.
	conn, err := s.OpenProjectSession(ctx, p, "capydb-authsync")
	if err != nil {
		return nil, nil, err
	}
	err = authsync.EnsureSchema(ctx, conn)
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return nil, nil, err
	}
	sealed, err := s.sealSecrets(sec)
	if err != nil {
		return nil, nil, err
	}
	cfg["webhook_receiver"] = receiverURL
	i := &store.Integration{ID: ids.New("int_"), OrganizationID: p.OrganizationID, ProjectID: p.ID, Provider: provider,
		State: store.IntegrationActive, Config: cfg, SecretsEnc: sealed}
	var job *queue.Job
	err = s.Store.InTx(ctx, func(tx pgx.Tx) error {
		lp, err := lockReadyProject(ctx, tx, p.OrganizationID, p.ID)
		if err != nil {
			return err
		}
		created, err := store.UpsertIntegration(ctx, tx, i)
		if err != nil {
			return err
		}
		meta := map[string]any{"provider": provider, "integration_id": i.ID}
		if backfill {
			job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: JobIntegrationClerkBackfill, OrganizationID: lp.OrganizationID,
				ProjectID: lp.ID, ClusterID: lp.ClusterID, LockedResource: "project:" + lp.ID, Payload: map[string]string{}})
			if err != nil {
				return err
			}
			meta["job_id"] = job.ID
		}
		if created {
			if err := audit(ctx, tx, lp.OrganizationID, lp.ID, "project.integration.connected", actor, meta); err != nil {
				return err
			}
		}
		return audit(ctx, tx, lp.OrganizationID, lp.ID, "project.integration.upsert", actor, meta)
	})
	if err != nil {
		return nil, nil, err
	}
	return i, job, nil
}

// DeleteIntegration disconnects a provider: its row and sealed secrets go;
// capydb_auth.users and its rows stay.
func (s *Service) DeleteIntegration(ctx context.Context, p *store.Project, provider string, actor Actor) error {
	return s.Store.InTx(ctx, func(tx pgx.Tx) error {
		if err := store.DeleteIntegration(ctx, tx, p.ID, provider); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return domainerr.Errorf(domainerr.NotFound, "no %s integration is connected to this project", provider)
			}
			return err
		}
		return audit(ctx, tx, p.OrganizationID, p.ID, "project.integration.delete", actor, map[string]any{"provider": provider})
	})
}

// PlatformConnect is the body of the Vercel and Netlify connect routes.
type PlatformConnect struct {
	Token string
	// Target is the Vercel project (id or name) or the Netlify site id.
	Target          string
	TeamID          string // Vercel only
	PreviewBranches bool
}

// ConnectVercel checks the token against the Vercel project, registers the
// deployment webhook when preview branches are on, seals the token and
// queues the first env push.
func (s *Service) ConnectVercel(ctx context.Context, p *store.Project, in PlatformConnect, receiverURL string, actor Actor) (*store.Integration, *queue.Job, error) {
	if strings.TrimSpace(in.Token) == "" || strings.TrimSpace(in.Target) == "" {
		return nil, nil, invalidf("token and vercel_project_id are required")
	}
	if p.State != store.ProjectReady {
		return nil, nil, conflictf("project is not ready (state %s)", p.State)
	}
	v := s.cfg.Integrations.NewVercel(in.Token, in.TeamID)
	vp, err := v.Project(ctx, in.Target)
	if err != nil {
		return nil, nil, providerError("Vercel rejected the token or project", err)
	}
	sec := integrationSecrets{Token: in.Token}
	cfg := map[string]any{"vercel_project_id": vp.ID, "preview_branches": in.PreviewBranches}
	if in.TeamID != "" {
		cfg["team_id"] = in.TeamID
	}
	if in.PreviewBranches {
		if hook, err := v.CreateWebhook(ctx, vp.ID, receiverURL); err != nil {
			cfg["webhook_error"] = err.Error()
		} else {
			sec.HookSecret = hook.Secret
		}
	}
	return s.connectPlatform(ctx, p, ProviderVercel, vp.ID, cfg, sec, actor)
}

// ConnectNetlify is ConnectVercel for a Netlify site; the hook's signing
// secret is ours (Netlify signs deploy notifications with the secret given).
func (s *Service) ConnectNetlify(ctx context.Context, p *store.Project, in PlatformConnect, receiverURL string, actor Actor) (*store.Integration, *queue.Job, error) {
	if strings.TrimSpace(in.Token) == "" || strings.TrimSpace(in.Target) == "" {
		return nil, nil, invalidf("token and site_id are required")
	}
	if p.State != store.ProjectReady {
		return nil, nil, conflictf("project is not ready (state %s)", p.State)
	}
	n := s.cfg.Integrations.NewNetlify(in.Token)
	site, err := n.Site(ctx, in.Target)
	if err != nil {
		return nil, nil, providerError("Netlify rejected the token or site", err)
	}
	sec := integrationSecrets{Token: in.Token}
	cfg := map[string]any{"site_id": site.ID, "preview_branches": in.PreviewBranches}
	if in.PreviewBranches {
		secret := ids.RandomBase62(40)
		if err := n.CreateHook(ctx, site.ID, receiverURL, secret); err != nil {
			cfg["hook_error"] = err.Error()
		} else {
			sec.HookSecret = secret
		}
	}
	return s.connectPlatform(ctx, p, ProviderNetlify, site.ID, cfg, sec, actor)
}

func (s *Service) connectPlatform(ctx context.Context, p *store.Project, provider, externalID string, cfg map[string]any,
	sec integrationSecrets, actor Actor) (*store.Integration, *queue.Job, error) {
	sealed, err := s.sealSecrets(sec)
	if err != nil {
		return nil, nil, err
	}
	i := &store.Integration{ID: ids.New("int_"), OrganizationID: p.OrganizationID, ProjectID: p.ID, Provider: provider,
		State: store.IntegrationActive, ExternalID: &externalID, Config: cfg, SecretsEnc: sealed}
	var job *queue.Job
	err = s.Store.InTx(ctx, func(tx pgx.Tx) error {
		lp, err := lockReadyProject(ctx, tx, p.OrganizationID, p.ID)
		if err != nil {
			return err
		}
		if _, err := store.UpsertIntegration(ctx, tx, i); err != nil {
			return err
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: JobIntegrationSyncEnv, OrganizationID: lp.OrganizationID,
			ProjectID: lp.ID, ClusterID: lp.ClusterID, LockedResource: "project:" + lp.ID, Payload: syncEnvPayload{Provider: provider}})
		if err != nil {
			return err
		}
		return audit(ctx, tx, lp.OrganizationID, lp.ID, "project.integration.connected", actor,
			map[string]any{"provider": provider, "integration_id": i.ID, "job_id": job.ID})
	})
	if err != nil {
		return nil, nil, err
	}
	return i, job, nil
}

// SyncIntegration queues a re-push of the env vars (404 when the provider is
// not connected, 409 when a push for it is already queued or running).
func (s *Service) SyncIntegration(ctx context.Context, p *store.Project, provider string, actor Actor) (*queue.Job, error) {
	switch provider {
	case ProviderVercel, ProviderNetlify:
	case "cloudflare":
		return nil, domainerr.New(domainerr.NotFound, "the cloudflare integration is not offered on this deployment")
	default:
		return nil, invalidf("provider must be vercel, netlify or cloudflare")
	}
	if _, err := store.GetIntegration(ctx, s.Store.Pool, p.ID, provider); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, domainerr.Errorf(domainerr.NotFound, "no %s integration is connected to this project", provider)
		}
		return nil, err
	}
	var job *queue.Job
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		lp, err := lockReadyProject(ctx, tx, p.OrganizationID, p.ID)
		if err != nil {
			return err
		}
		// Under the project lock, so two concurrent syncs cannot both pass.
		active, err := queue.ActiveJobs(ctx, tx, lp.ID, JobIntegrationSyncEnv)
		if err != nil {
			return err
		}
		for _, j := range active {
			var in syncEnvPayload
			if j.DecodePayload(&in) == nil && in.Provider == provider {
				return conflictf("a %s sync is already queued or running (job %s)", provider, j.ID)
			}
		}
		job, err = queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: JobIntegrationSyncEnv, OrganizationID: lp.OrganizationID,
			ProjectID: lp.ID, ClusterID: lp.ClusterID, LockedResource: "project:" + lp.ID, Payload: syncEnvPayload{Provider: provider}})
		return err
	})
	return job, err
}

// ResyncPlatforms queues an env push for every connected Vercel and Netlify
// integration of a project, in the caller's transaction: the URLs changed
// (credential rotation; PRODUCT.md §23.2).
func ResyncPlatforms(ctx context.Context, tx pgx.Tx, orgID, projectID, clusterID string) error {
	list, err := store.ListIntegrations(ctx, tx, projectID)
	if err != nil {
		return err
	}
	for _, i := range list {
		if i.Provider != ProviderVercel && i.Provider != ProviderNetlify {
			continue
		}
		if _, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: JobIntegrationSyncEnv, OrganizationID: orgID,
			ProjectID: projectID, ClusterID: clusterID, LockedResource: "project:" + projectID,
			Payload: syncEnvPayload{Provider: i.Provider}}); err != nil {
			return err
		}
	}
	return nil
}
