// Package lifecycle is what each job type does (provision, delete, rotate,
// expire a credential) and the transactional entry points that write a state
// change together with the job that carries it out. HTTP handlers call the
// entry points; job handlers call dataplane; neither does the other's work.
package lifecycle

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/integrations"
	"github.com/capydb/capydb/internal/netguard"
	"github.com/capydb/capydb/internal/pitr"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/secretbox"
	"github.com/capydb/capydb/internal/store"
)

// Project job types (wire strings are public in the jobs API and stay).
const (
	JobProjectProvision         = "instance.create"
	JobProjectDelete            = "project.delete"
	JobProjectRotateCredentials = "project.rotate_credentials"
	JobProjectExpireCredential  = "project.expire_credential"
)

// Config is what a Service is built from; New fills the defaults and
// refuses what cannot work, so nothing is set on a Service afterwards.
type Config struct {
	Store *store.Store   // required
	Box   *secretbox.Box // required: seals passwords and source URLs
	Log   *slog.Logger   // nil = slog.Default()
	// Blob holds backups, exports and uploads (see backups.go); nil = no
	// backup storage (backup, export and import jobs fail permanently).
	Blob *blobstore.Store
	// ImportGuard checks the hosts of import sources (see imports.go);
	// nil = public addresses only.
	ImportGuard *netguard.Guard
	// CloneWorkers is how many parallel workers clones and restores use;
	// 0 = one per CPU, at least 2.
	CloneWorkers int
	// TempDir is a private (0700) directory for dump files; "" = the
	// system's temporary directory.
	TempDir string
	// VerifyDelay pauses between a backup's dump and its verification
	// (tests corrupt the stored file in that window); 0 = none.
	VerifyDelay time.Duration
	// StudioTimeout replaces Studio's 15 s time limit (tests only; 0 = 15 s).
	StudioTimeout time.Duration
	// Integrations are the base URLs of the Clerk, Vercel and Netlify APIs
	// ("" = the real ones; integrations.go).
	Integrations integrations.Endpoints
}

func (c *Config) defaults() {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.ImportGuard == nil {
		c.ImportGuard = &netguard.Guard{}
	}
	if c.CloneWorkers == 0 {
		c.CloneWorkers = max(2, runtime.NumCPU())
	}
}

func (c *Config) validate() error {
	switch {
	case c.Store == nil:
		return errors.New("lifecycle: Config.Store is required")
	case c.Box == nil:
		return errors.New("lifecycle: Config.Box is required")
	case c.CloneWorkers < 0:
		return fmt.Errorf("lifecycle: CloneWorkers must not be negative (got %d)", c.CloneWorkers)
	case c.VerifyDelay < 0:
		return fmt.Errorf("lifecycle: VerifyDelay must not be negative (got %s)", c.VerifyDelay)
	}
	return nil
}

// Service owns project lifecycles.
type Service struct {
	// Store, Box and Log are Config's, exported for the handlers' helpers;
	// treat them as read-only.
	Store *store.Store
	Box   *secretbox.Box
	Log   *slog.Logger

	cfg      Config
	mu       sync.RWMutex
	clusters map[string]*dataplane.Cluster
	studio   studioState // studio.go
	// pitr archives pitrCluster's WAL (AttachPITR); nil = no PITR.
	pitr        *pitr.Manager
	pitrCluster string
}

// New builds a Service from cfg.
func New(cfg Config) (*Service, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Service{Store: cfg.Store, Box: cfg.Box, Log: cfg.Log, cfg: cfg, clusters: map[string]*dataplane.Cluster{}}, nil
}

// AttachCluster makes a cluster's admin handle available to job handlers.
func (s *Service) AttachCluster(c *dataplane.Cluster) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clusters[c.ID] = c
}

// Cluster returns the admin handle of a cluster this process can reach. An
// unknown cluster is a transient error: another worker may reach it.
func (s *Service) Cluster(id string) (*dataplane.Cluster, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clusters[id]
	if !ok {
		return nil, fmt.Errorf("cluster %s is not reachable from this worker", id)
	}
	return c, nil
}

// Clusters returns every attached cluster handle.
func (s *Service) Clusters() map[string]*dataplane.Cluster {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]*dataplane.Cluster, len(s.clusters))
	for k, v := range s.clusters {
		out[k] = v
	}
	return out
}

// Handlers maps each job type to its handler.
func (s *Service) Handlers() map[string]queue.Handler {
	h := map[string]queue.Handler{
		JobProjectProvision:         &provisionHandler{s},
		JobProjectDelete:            &deleteHandler{s},
		JobProjectRotateCredentials: &rotateHandler{s},
		JobProjectExpireCredential:  &expireHandler{s},
		JobPreviewCreate:            &previewBuildHandler{s: s},
		JobPreviewReset:             &previewBuildHandler{s: s, reset: true},
		JobPreviewDelete:            &previewDeleteHandler{s},
		JobProjectBackup:            &backupHandler{s},
		JobProjectBackupDelete:      &backupDeleteHandler{s},
		JobProjectRestore:           &restoreHandler{s},
		JobPITRRestore:              &restoreHandler{s},
		JobProjectExport:            &exportHandler{s},
		JobProjectImport:            &importHandler{s},
		JobProjectApplyNetwork:      &networkHandler{s},
		JobFollowStart:              &followStartHandler{s},
		JobFollowStatus:             &followStatusHandler{s},
		JobFollowCutover:            &followCutoverHandler{s},
		JobFollowAbort:              &followAbortHandler{s},
		JobPromotePreview:           &promoteHandler{s},
		JobIntegrationSyncEnv:       &syncEnvHandler{s},
		JobIntegrationClerkBackfill: &clerkBackfillHandler{s},
		JobProjectMove:              &moveHandler{s},
		JobProjectMoveCleanup:       &moveCleanupHandler{s},
		JobClusterPromote:           &promoteClusterHandler{s},
	}
	maps.Copy(h, s.settingsHandlers()) // db_settings.go
	return h
}

// JobTypes lists every job type this server runs, sorted: the keys of
// Handlers, so the OpenAPI enum of Job.type cannot drift from the workers.
func JobTypes() []string {
	return slices.Sorted(maps.Keys((&Service{}).Handlers()))
}

// newPassword returns 32 random base62 characters (no URL escaping needed).
func newPassword() string { return ids.RandomBase62(32) }

const lowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomLower returns n random characters from [a-z0-9] for generated names.
func randomLower(n int) string {
	b := make([]byte, n)
	max := big.NewInt(int64(len(lowerAlnum)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic(err)
		}
		b[i] = lowerAlnum[v.Int64()]
	}
	return string(b)
}

// Connection is what a client needs to reach a database.
type Connection struct {
	Username  string
	DirectURL string
	PooledURL string
	// SessionURL goes through the session-mode pgBouncer; empty when the
	// cluster has none.
	SessionURL string
}

// ConnectionFor builds the direct and pooled URLs of a project.
func (s *Service) ConnectionFor(p *store.Project, c *store.Cluster) (Connection, error) {
	return s.connection(p.RoleName, p.PasswordEnc, p.DatabaseName, c)
}

// connection builds the URLs of one login role on one database of c, for
// projects and previews alike.
func (s *Service) connection(role string, passwordEnc []byte, db string, c *store.Cluster) (Connection, error) {
	pw, err := s.open(passwordEnc)
	if err != nil {
		return Connection{}, fmt.Errorf("while decrypting credentials: %w", err)
	}
	conn := Connection{
		Username:  role,
		DirectURL: BuildURL(role, pw, c.PublicHost, c.DirectPort, db),
		PooledURL: BuildURL(role, pw, c.PublicHost, c.PooledPort, db),
	}
	if c.SessionPort > 0 {
		conn.SessionURL = BuildURL(role, pw, c.PublicHost, c.SessionPort, db)
	}
	return conn, nil
}

// BuildURL renders postgres://user:password@host:port/db?sslmode=require.
func BuildURL(user, password, host string, port int, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(host, strconv.Itoa(port)),
		Path:     "/" + db,
		RawQuery: "sslmode=require",
	}
	return u.String()
}

func (s *Service) project(ctx context.Context, j *queue.Job) (*store.Project, error) {
	if j.ProjectID == nil {
		return nil, queue.PermanentError(fmt.Errorf("job has no project"))
	}
	p, err := store.GetProjectAny(ctx, s.Store.Pool, *j.ProjectID)
	if err == store.ErrNotFound {
		return nil, queue.PermanentError(fmt.Errorf("project %s no longer exists", *j.ProjectID))
	}
	return p, err
}

// liveProject is project for handlers that must not touch a project whose
// deletion has begun: that is a permanent failure, not a retry.
func (s *Service) liveProject(ctx context.Context, j *queue.Job) (*store.Project, error) {
	p, err := s.project(ctx, j)
	if err != nil {
		return nil, err
	}
	if err := notDeleting(p); err != nil {
		return nil, err
	}
	return p, nil
}

// liveProjectCluster is liveProject with the cluster the project lives on.
func (s *Service) liveProjectCluster(ctx context.Context, j *queue.Job) (*store.Project, *dataplane.Cluster, error) {
	p, err := s.liveProject(ctx, j)
	if err != nil {
		return nil, nil, err
	}
	c, err := s.Cluster(p.ClusterID)
	if err != nil {
		return nil, nil, err
	}
	return p, c, nil
}

// abortProjectCluster is, for an Abort hook, the job's project and the
// cluster it lives on. A project that is gone (or missing from the job)
// leaves nothing to undo: no project and no error.
func (s *Service) abortProjectCluster(ctx context.Context, j *queue.Job) (*store.Project, *dataplane.Cluster, error) {
	p, err := s.project(ctx, j)
	if err != nil {
		return nil, nil, nil
	}
	c, err := s.Cluster(p.ClusterID)
	if err != nil {
		return nil, nil, err
	}
	return p, c, nil
}

func notDeleting(p *store.Project) error {
	if p.DeletedAt != nil || p.State == store.ProjectDeleting {
		return queue.PermanentError(fmt.Errorf("project is being deleted"))
	}
	return nil
}

func (s *Service) seal(secret string) []byte { return s.Box.Seal([]byte(secret)) }

func (s *Service) open(sealed []byte) (string, error) {
	b, err := s.Box.Open(sealed)
	return string(b), err
}
