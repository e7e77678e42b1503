package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/authsync"
	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/integrations"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Deployment hooks of Vercel and Netlify (API.md §3.24 routes 108, 109;
// PRODUCT.md §23.2): a non-production deployment of a branch gets a clone
// preview named branch-<slug> and that preview's URLs as branch-scoped
// variables.

// BranchSlug is PRODUCT.md §23.2's slug: lower-cased, every character other
// than a-z and 0-9 turned into "-", at most 50 characters.
func BranchSlug(branch string) string {
	b := []byte(strings.ToLower(branch))
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	if len(b) > 50 {
		b = b[:50]
	}
	return string(b)
}

// deployment is what a hook delivery says: the branch of a non-production deployment.
type deployment struct {
	branch string
	ignore bool // production, another event type, or no branch
}

// parseVercel reads a Vercel webhook: {"type", "payload": {"target",
// "deployment": {"meta": {"githubCommitRef"|"gitlabCommitRef"|"bitbucketCommitRef"}}}}.
func parseVercel(body []byte) (deployment, error) {
	var ev struct {
		Type    string `json:"type"`
		Payload struct {
			Target     *string `json:"target"`
			Deployment struct {
				Meta map[string]any `json:"meta"`
			} `json:"deployment"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return deployment{}, fmt.Errorf("%w: body is not a Vercel webhook event", authsync.ErrInvalid)
	}
	if ev.Type != "deployment.created" || ev.Payload.Target != nil && *ev.Payload.Target == "production" {
		return deployment{ignore: true}, nil
	}
	for _, k := range []string{"githubCommitRef", "gitlabCommitRef", "bitbucketCommitRef"} {
		if b, _ := ev.Payload.Deployment.Meta[k].(string); b != "" {
			return deployment{branch: b}, nil
		}
	}
	return deployment{ignore: true}, nil
}

// parseNetlify reads a Netlify deploy notification: the deploy object with
// "branch" and "context" (production, deploy-preview, branch-deploy).
func parseNetlify(body []byte) (deployment, error) {
	var d struct {
		Branch  string `json:"branch"`
		Context string `json:"context"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return deployment{}, fmt.Errorf("%w: body is not a Netlify deploy", authsync.ErrInvalid)
	}
	if d.Context == "production" || d.Context == "" || d.Branch == "" {
		return deployment{ignore: true}, nil
	}
	return deployment{branch: d.Branch}, nil
}

// ReceiveDeployment verifies a Vercel or Netlify hook delivery with the
// secret of the hook the server registered and, for a non-production
// deployment of a branch, ensures the branch-<slug> preview (created, or its
// TTL refreshed) and queues the branch-scoped env push, which runs after
// the preview is built (same lock). Errors as ReceiveAuthEvent.
func (s *Service) ReceiveDeployment(ctx context.Context, provider, projectID, signature string, body []byte) error {
	p, i, sec, err := s.receiverIntegration(ctx, projectID, provider)
	if err != nil {
		return err
	}
	if sec.HookSecret == "" {
		return fmt.Errorf("%w: no deployment hook is registered for this integration", integrations.ErrSignature)
	}
	var d deployment
	switch provider {
	case ProviderVercel:
		if err = integrations.VerifyVercel(sec.HookSecret, signature, body); err == nil {
			d, err = parseVercel(body)
		}
	case ProviderNetlify:
		if err = integrations.VerifyNetlify(sec.HookSecret, signature, body); err == nil {
			d, err = parseNetlify(body)
		}
	default:
		return ErrReceiverNotFound
	}
	if err != nil || d.ignore {
		return err
	}
	if on, _ := i.Config["preview_branches"].(bool); !on {
		return nil
	}
	org, err := store.GetOrganization(ctx, s.Store.Pool, p.OrganizationID)
	if err != nil {
		return err
	}
	system := Actor{Kind: "system"}
	name := "branch-" + BranchSlug(d.branch)
	holder, err := store.PreviewNameHolder(ctx, s.Store.Pool, p.ID, name)
	if err != nil {
		return err
	}
	var previewID string
	if holder == "" {
		pv, _, err := s.CreatePreview(ctx, org, p.ID, CreatePreviewParams{Name: name, Mode: store.PreviewModeClone,
			TTLHours: DefaultPreviewTTLHours}, system)
		if err != nil {
			return err
		}
		previewID = pv.ID
	} else {
		previewID = holder
		// A preview still building keeps the TTL it was created with (the default).
		if _, err := s.ExtendPreview(ctx, org.ID, holder, DefaultPreviewTTLHours, system); err != nil && !isConflictOrInvalid(err) {
			return err
		}
	}
	return s.Store.InTx(ctx, func(tx pgx.Tx) error {
		_, err := queue.Enqueue(ctx, tx, queue.EnqueueParams{Type: JobIntegrationSyncEnv, OrganizationID: p.OrganizationID,
			ProjectID: p.ID, PreviewID: previewID, ClusterID: p.ClusterID, LockedResource: "preview:" + previewID,
			Payload: syncEnvPayload{Provider: provider, PreviewID: previewID, Branch: d.branch}})
		return err
	})
}

// isConflictOrInvalid: ExtendPreview refused (still building, expiring, or
// already further out); the preview stays as it is.
func isConflictOrInvalid(err error) bool {
	k := domainerr.KindOf(err)
	return k == domainerr.Conflict || k == domainerr.Invalid
}

// pushBranch pushes a ready preview's URLs as branch-scoped variables.
func (s *Service) pushBranch(ctx context.Context, i *store.Integration, sec integrationSecrets, in syncEnvPayload, rep *queue.Reporter) error {
	pv, err := store.GetPreview(ctx, s.Store.Pool, i.OrganizationID, in.PreviewID)
	if errors.Is(err, store.ErrNotFound) {
		return queue.PermanentError(fmt.Errorf("preview %s no longer exists", in.PreviewID))
	}
	if err != nil {
		return err
	}
	switch pv.State {
	case store.PreviewReady:
	case store.PreviewProvisioning, store.PreviewResetting:
		return fmt.Errorf("preview %s is %s; the push is retried", pv.ID, pv.State)
	default:
		return queue.PermanentError(fmt.Errorf("preview %s is %s", pv.ID, pv.State))
	}
	c, err := store.GetCluster(ctx, s.Store.Pool, pv.ClusterID)
	if err != nil {
		return err
	}
	conn, err := s.PreviewConnection(pv, c)
	if err != nil {
		return err
	}
	rep.Secret(conn.DirectURL, conn.PooledURL)
	vars := [][2]string{{EnvDatabaseURL, conn.PooledURL}, {EnvDatabaseURLUnpooled, conn.DirectURL}}
	switch i.Provider {
	case ProviderVercel:
		team, _ := i.Config["team_id"].(string)
		var envs []integrations.VercelEnv
		for _, v := range vars {
			envs = append(envs, integrations.VercelEnv{Key: v[0], Value: v[1], Type: "encrypted", Target: []string{"preview"}, GitBranch: in.Branch})
		}
		err = s.cfg.Integrations.NewVercel(sec.Token, team).UpsertEnv(ctx, deref(i.ExternalID), envs)
	case ProviderNetlify:
		n := s.cfg.Integrations.NewNetlify(sec.Token)
		var site *integrations.NetlifySite
		if site, err = n.Site(ctx, deref(i.ExternalID)); err == nil {
			for _, v := range vars {
				if err = n.SetBranchEnv(ctx, site, v[0], in.Branch, v[1]); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		return s.providerFailure(ctx, i, err)
	}
	return store.SetIntegrationStatus(ctx, s.Store.Pool, i.ID, store.IntegrationActive,
		map[string]any{"last_synced_at": time.Now().UTC().Format(time.RFC3339), "last_error": nil})
}
