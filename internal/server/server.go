package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/capydb/capydb/internal/api"
	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/blobstore"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/integrations"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/localcluster"
	"github.com/capydb/capydb/internal/netguard"
	"github.com/capydb/capydb/internal/observe"
	"github.com/capydb/capydb/internal/pglogs"
	"github.com/capydb/capydb/internal/pitr"
	"github.com/capydb/capydb/internal/plan"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/secretbox"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/webhooks"
)

// ControlDatabase is the control database's name on the embedded cluster.
const ControlDatabase = "capydb_control"

// controlDSNFile lets operator commands find the embedded control database.
const controlDSNFile = "control-database-url"

// BootstrapKeyFile holds the first admin key (0600).
const BootstrapKeyFile = "bootstrap-admin-key"

// Server is a running capydb server.
type Server struct {
	cfg Config
	// logCollector tails the embedded cluster's postgres log (nil without one).
	logCollector *pglogs.Collector
	log          *slog.Logger
	cluster      *localcluster.Cluster
	pitr         *pitr.Manager
	store        *store.Store
	lifecycle    *lifecycle.Service
	blob         *blobstore.Store // backups, exports, uploads (lifecycle and api share it)
	worker       *queue.Worker
	webhooks     *webhooks.Service
	api          *api.Server
	http         *http.Server
	listener     net.Listener
	tmpDir       string              // private scratch files (dumps), swept at start
	clusterID    string              // the local cluster's id ("" without one)
	warm         *dataplane.WarmPool // the local cluster's warm pool (nil without one)
	box          *secretbox.Box
	// standby is true while a node's cluster is a standby cluster that has
	// not been promoted; replPassword is the replication login's password
	// once a primary's node set it (standby.go).
	standby      bool
	replPassword string

	// BootstrapKey is the plaintext of the first admin key when this start created it.
	BootstrapKey string
	// URL is the API base URL.
	URL string

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errCh  chan error
}

// Start brings everything up and returns once the API is serving.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (_ *Server, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log, errCh: make(chan error, 4)}
	defer func() {
		if err != nil {
			s.Stop(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating data dir %s: %w", cfg.DataDir, err)
	}
	key, err := secretbox.LoadKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	box, err := secretbox.New(key)
	if err != nil {
		return nil, err
	}
	s.box = box

	dsn := cfg.DatabaseURL
	// Failed logins the cluster's logs report, for the ban watcher (which
	// needs the store, so it starts later); dropped when it falls behind.
	authFailures := make(chan localcluster.AuthFailure, 4096)
	if cfg.EmbeddedCluster {
		archive := ""
		if cfg.PITR {
			if _, err := exec.LookPath("pgbackrest"); err != nil {
				return nil, errors.New("--pitr (the default) archives WAL with pgBackRest, which is not installed: " +
					"install it (Debian: apt-get install pgbackrest; scripts/ensure-deps.sh does) or start with --pitr=false")
			}
			archive = pitr.ArchiveCommand(cfg.DataDir)
		}
		var standby *localcluster.StandbySource
		if cfg.Node {
			if standby, err = nodeStandbySource(ctx, dsn, cfg.DataDir, box, log); err != nil {
				return nil, err
			}
		}
		s.cluster, err = localcluster.Start(ctx, localcluster.Config{
			ArchiveCommand: archive,
			AllowPlaintext: cfg.AllowPlaintext,
			ReadReplica:    cfg.ReadReplica, ReadReplicaPort: cfg.ReadReplicaPort, Standby: standby,
			OnAuthFailure: func(f localcluster.AuthFailure) {
				select {
				case authFailures <- f:
				default:
				}
			},
			DataDir: cfg.DataDir, DirectPort: cfg.DirectPort, DirectPortExplicit: cfg.DirectPortExplicit,
			PooledPort: cfg.PooledPort, PooledPortExplicit: cfg.PooledPortExplicit, PublicHost: cfg.PublicHost,
			SessionPort: cfg.SessionPort, SessionPortExplicit: cfg.SessionPortExplicit,
			AllowOldPgBouncer: cfg.AllowOldPgBouncer, Fast: cfg.Fast, Logger: log,
			TLSCertFile: cfg.TLSCert, TLSKeyFile: cfg.TLSKey, TLSCAFile: cfg.TLSCA, TLSReloadInterval: cfg.TLSReloadInterval,
		})
		if err != nil {
			return nil, err
		}
		if dsn == "" {
			if err := ensureDatabase(ctx, s.cluster.AdminDSN(), ControlDatabase); err != nil {
				return nil, err
			}
			dsn = s.cluster.AdminDSNFor(ControlDatabase)
			if err := writeSecretFile(filepath.Join(cfg.DataDir, controlDSNFile), dsn+"\n"); err != nil {
				return nil, err
			}
		}
	}

	s.store, err = store.Open(ctx, dsn, int32(cfg.Workers+20))
	if err != nil {
		return nil, err
	}
	if cfg.Node {
		// A node's login may not change the schema: the control plane migrates.
		if ok, err := s.store.MigrationsCurrent(ctx); err != nil {
			return nil, fmt.Errorf("while checking the control database's schema: %w", err)
		} else if !ok {
			return nil, errors.New("the control database's schema is older than this node: upgrade and start the control plane first")
		}
	} else if err := s.store.Migrate(ctx); err != nil {
		return nil, err
	}
	// Dumps of tenant data live only in a private directory under the data
	// directory; whatever a killed process left there is swept now.
	s.tmpDir = filepath.Join(cfg.DataDir, "tmp")
	// A recovery instance a killed restore left running is stopped first.
	if s.cluster != nil && cfg.PITR {
		if s.pitr, err = pitr.New(pitr.Config{DataDir: cfg.DataDir, RepoPath: cfg.PITRRepoPath, PGData: s.cluster.PGData(),
			SocketDir: s.cluster.SocketDir(), Port: s.cluster.DirectPort(), AdminUser: s.cluster.AdminUser(),
			AdminDSN: s.cluster.AdminDSN(), BinDir: s.cluster.BinDir(), Credential: s.cluster.OwnerCredential(),
			Chown: s.cluster.Chown, WindowDays: cfg.PITRWindowDays, Logger: log}); err != nil {
			return nil, err
		}
		if err := s.pitr.Reap(); err != nil {
			return nil, err
		}
	}
	if err := os.RemoveAll(s.tmpDir); err != nil {
		return nil, fmt.Errorf("while sweeping %s: %w", s.tmpDir, err)
	}
	if err := os.MkdirAll(s.tmpDir, 0o700); err != nil {
		return nil, err
	}
	if s.pitr != nil {
		if err := s.pitr.EnsureDirs(); err != nil {
			return nil, err
		}
		if err := s.pitr.Setup(ctx); err != nil {
			return nil, err
		}
	}
	if s.blob, err = s.openBackups(ctx, key); err != nil {
		return nil, err
	}
	s.lifecycle, err = lifecycle.New(lifecycle.Config{Store: s.store, Box: box, Log: log, Blob: s.blob,
		ImportGuard: &netguard.Guard{AllowPrivate: cfg.ImportsAllowPrivate}, CloneWorkers: cfg.CloneWorkers,
		TempDir: s.tmpDir, VerifyDelay: cfg.BackupVerifyDelay, StudioTimeout: cfg.StudioTimeout,
		Integrations: integrations.Endpoints{Clerk: cfg.ClerkAPIURL, Vercel: cfg.VercelAPIURL, Netlify: cfg.NetlifyAPIURL}})
	if err != nil {
		return nil, err
	}
	// Receiver addresses are checked when saved and again at connect time.
	s.webhooks = &webhooks.Service{Store: s.store, Box: box, AllowInsecure: cfg.WebhooksAllowInsecure,
		Guard: &netguard.Guard{AllowPrivate: cfg.WebhooksAllowInsecure}}

	var bans *lifecycle.BanWatcher
	if s.cluster != nil {
		c := &store.Cluster{
			ID: ids.New("cl_"), Name: "local", Provider: "embedded", Region: "local",
			PublicHost: cfg.PublicHost, DirectPort: s.cluster.DirectPort(), PooledPort: s.cluster.PooledPort(),
			SessionPort:     s.cluster.SessionPort(),
			PostgresVersion: s.cluster.PostgresMajor(), State: "active",
		}
		if cfg.Node {
			if c, err = s.registerNode(ctx, c); err != nil {
				return nil, err
			}
			s.clusterID = c.ID
			if s.standby, err = s.cluster.InRecovery(ctx); err != nil {
				return nil, err
			}
			if !s.standby {
				if err := s.recordAdminSecret(ctx, box); err != nil {
					return nil, fmt.Errorf("while recording the cluster's admin password: %w", err)
				}
			}
		} else if err := store.UpsertClusterByName(ctx, s.store.Pool, c); err != nil {
			return nil, fmt.Errorf("while registering the local cluster: %w", err)
		}
		// pg_dump/pg_restore for clones, dumps and restores; dumps of tenant
		// data only in the private temp directory.
		dp, err := dataplane.Open(ctx, dataplane.Config{ID: c.ID, DSNFor: s.cluster.AdminDSNFor, Pooler: s.cluster, Network: s.cluster,
			MaxConns: int32(cfg.Workers + 5), ToolsDir: s.cluster.BinDir(), TempDir: s.tmpDir, CrashAt: crashAt(cfg.CrashAt, log)})
		if err != nil {
			return nil, err
		}
		// A standby cluster is read-only: its primary's template and logins
		// replicate to it (finishPromotion runs this after a failover).
		if !s.standby {
			if err := dp.EnsureTemplate(ctx); err != nil {
				return nil, err
			}
			// Maintenance logins a killed worker left behind are dropped.
			if n, err := dp.SweepAgents(ctx); err != nil {
				log.Warn("could not sweep leftover maintenance logins", "error", err)
			} else if n > 0 {
				log.Info("dropped leftover maintenance logins", "count", n)
			}
		}
		s.lifecycle.AttachCluster(dp)
		// 0 when --read-replica is off: attached projects lose their URLs.
		// (A node's confined login may not write clusters; nodes have no standby.)
		if !cfg.Node {
			if err := store.SetClusterReadReplicaPort(ctx, s.store.Pool, c.ID, s.cluster.ReadReplicaPort()); err != nil {
				return nil, fmt.Errorf("while registering the read replica: %w", err)
			}
		}
		s.warm = dp.EnableWarmPool(cfg.WarmPool, log)
		// The HBA files follow the store (e.g. after the data dir moved); a
		// standby's follow its primary's projects.
		if s.standby {
			if err := s.lifecycle.ApplyStandbyNetwork(ctx, c.ID, c.ReplicaOf); err != nil {
				log.Warn("could not apply the primary's network rules", "error", err)
			}
		} else if err := s.lifecycle.ApplyNetwork(ctx, c.ID); err != nil {
			log.Warn("could not apply the projects' network rules", "error", err)
		}
		bans = lifecycle.NewBanWatcher(s.lifecycle, lifecycle.BanConfig{ClusterID: c.ID,
			Threshold: cfg.BanThreshold, Window: cfg.BanWindow, Duration: cfg.BanDuration, Log: log})
		s.clusterID = c.ID
		if s.pitr != nil {
			s.lifecycle.AttachPITR(c.ID, s.pitr)
		}
		log.Info("local cluster registered", "cluster_id", c.ID, "direct_port", c.DirectPort, "pooled_port", c.PooledPort)
	}

	if !cfg.Node {
		if err := s.bootstrap(ctx); err != nil {
			return nil, err
		}
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	if bans != nil {
		s.run(runCtx, bans.Run)
		s.run(runCtx, func(ctx context.Context) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case f := <-authFailures:
					bans.Observe(lifecycle.AuthFailure{Database: f.Database, Addr: f.Addr})
				}
			}
		})
	}
	if s.cluster != nil {
		// The postgres log is collected where the cluster runs.
		s.logCollector = pglogs.New(pglogs.Config{Store: s.store, ClusterID: s.clusterID, Dir: s.cluster.LogDir(),
			Retention: cfg.LogRetention, Logger: log,
			OnAuthFailure: func(db string, addr netip.Addr) {
				select {
				case authFailures <- localcluster.AuthFailure{Database: db, Addr: addr, Source: "postgres"}:
				default:
				}
			}})
		s.run(runCtx, s.logCollector.Run)
	}
	if cfg.Node {
		s.startNodeWork(runCtx)
		return s, nil
	}
	if cfg.has("worker") {
		// The control worker runs the cluster-free jobs and those of the
		// embedded cluster; every other cluster's jobs wait for its node.
		scope := queue.Scope{ClusterFree: true}
		if s.clusterID != "" {
			scope.Clusters = []string{s.clusterID}
		}
		s.worker = queue.NewWorker(s.store.Pool, queue.Config{Concurrency: cfg.Workers, Logger: log, Scope: scope}, s.lifecycle.Handlers())
		s.run(runCtx, s.worker.Run)
		if s.warm != nil {
			s.run(runCtx, s.warm.Run)
		}
		s.run(runCtx, lifecycle.NewPreviewReaper(s.lifecycle, bgsvc.PeriodicConfig{
			Interval: cfg.PreviewReaperInterval, Clock: cfg.Clock, Logger: log}).Run)
		if cfg.EphemeralDatabases {
			s.run(runCtx, lifecycle.NewEphemeralReaper(s.lifecycle, bgsvc.PeriodicConfig{
				Interval: cfg.EphemeralReaperInterval, Clock: cfg.Clock, Logger: log}).Run)
		}
		s.run(runCtx, lifecycle.NewBackupScheduler(s.lifecycle, bgsvc.PeriodicConfig{
			Interval: cfg.BackupSchedulerInterval, Clock: cfg.Clock, Logger: log}).Run)
		var mailer observe.Mailer
		if cfg.SMTPURL != "" {
			m, err := observe.ParseSMTPURL(cfg.SMTPURL)
			if err != nil {
				return nil, err
			}
			mailer = m
		}
		ocfg := observe.Config{Store: s.store, Clusters: s.lifecycle.Clusters, Mailer: mailer}
		if cfg.ReadOnlyAtFullStorage {
			ocfg.ReadOnly = s.lifecycle.StorageReadOnly
		}
		if cfg.StorageLimitOverride > 0 {
			ocfg.Limits = func(name string) plan.Limits {
				l, err := plan.Lookup(name)
				if err != nil {
					l = plan.Defaults["business"]
				}
				l.StorageLimitBytes = cfg.StorageLimitOverride
				return l
			}
		}
		s.run(runCtx, observe.NewSampler(ocfg,
			bgsvc.PeriodicConfig{Interval: cfg.SamplerInterval, Clock: cfg.Clock, Logger: log}).Run)
		if s.pitr != nil {
			s.run(runCtx, lifecycle.NewPITRBackupScheduler(s.lifecycle, cfg.PITRBackupInterval, bgsvc.PeriodicConfig{
				Interval: min(cfg.PITRBackupInterval, time.Minute), Clock: cfg.Clock, Logger: log}).Run)
		}
		d, err := webhooks.NewDispatcher(s.store.Pool, box, webhooks.Config{RetryBase: cfg.WebhooksRetryBase, Guard: s.webhooks.Guard, Logger: log})
		if err != nil {
			return nil, err
		}
		s.run(runCtx, d.Run)
	}
	if cfg.has("api") {
		if err := s.serveAPI(runCtx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// run starts a background service; Stop cancels ctx and waits for it. The
// services block in Run until ctx ends and report trouble in their logs.
func (s *Server) run(ctx context.Context, service func(context.Context) error) {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); _ = service(ctx) }()
}

func (s *Server) serveAPI(ctx context.Context) error {
	access, err := s.cfg.access()
	if err != nil {
		return err
	}
	oidc, err := newOIDC(ctx, s.cfg, s.log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&observe.Collector{Store: s.store})
	if s.logCollector != nil {
		reg.MustRegister(s.logCollector)
	}
	// The embedded standby and standby clusters on nodes.
	reg.MustRegister(replicaCollector{s})
	s.api = api.New(api.Deps{
		Store: s.store, Lifecycle: s.lifecycle, Auth: &auth.Authenticator{Store: s.store, OIDC: oidc}, Log: s.log,
		Version: s.cfg.Version, Ready: s.ready, Components: s.components, Registry: reg, Webhooks: s.webhooks,
		Blob: s.blob, ReadReplicaLag: s.readReplicaLag,
		Limiter: auth.NewLimiter(access.limits), TrustedProxies: access.proxies,
		CACert: s.caCert, LogRetention: s.cfg.LogRetention, LogSearch: s.cfg.LogSearch,
		OIDCClient: s.cfg.oidcClient(),
		Ephemeral:  api.EphemeralConfig{Enabled: s.cfg.EphemeralDatabases, Cap: s.cfg.EphemeralCap},
	})
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", s.cfg.Listen, err)
	}
	s.listener = ln
	s.URL = "http://" + ln.Addr().String()
	s.http = &http.Server{Handler: s.api, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(api.JSONErrorListener(ln, s.cfg.Version)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errCh <- err
		}
	}()
	return nil
}

// caCert is what GET /v1/ca.pem serves: the embedded cluster's CA (none
// without the embedded cluster).
func (s *Server) caCert() ([]byte, error) {
	var own []byte
	if s.cluster != nil {
		var err error
		if own, err = s.cluster.CACertPEM(); err != nil {
			return nil, err
		}
	}
	return s.fleetCAs(own)
}

// Errors delivers fatal runtime errors (e.g. the listener failing).
func (s *Server) Errors() <-chan error { return s.errCh }

// Store exposes the control database (tests, operator commands).
func (s *Server) Store() *store.Store { return s.store }

// Cluster exposes the embedded cluster (nil when disabled).
func (s *Server) Cluster() *localcluster.Cluster { return s.cluster }

// API exposes the HTTP API (tests read its access rules and OpenAPI document).
func (s *Server) API() *api.Server { return s.api }

// Stop shuts down in reverse order: HTTP, workers, control DB, cluster.
func (s *Server) Stop(ctx context.Context) {
	if s.http != nil {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = s.http.Shutdown(c)
		cancel()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	for _, c := range s.lifecycleClusters() {
		c.Close()
	}
	if s.cluster != nil && s.cfg.Node && s.store != nil && s.clusterID != "" {
		// A node records a clean stop: a fast shutdown sends every committed
		// write to the streaming standbys first, so a failover then loses none.
		c, cancel := context.WithTimeout(ctx, 60*time.Second)
		if err := s.cluster.Stop(c); err != nil {
			s.log.Error("stopping the local cluster failed", "error", err)
		} else if !s.standby {
			if err := store.NodeStopped(c, s.store.Pool, s.clusterID); err != nil {
				s.log.Warn("could not record the clean stop", "error", err)
			}
		}
		cancel()
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.cluster != nil {
		c, cancel := context.WithTimeout(ctx, 60*time.Second)
		if err := s.cluster.Stop(c); err != nil {
			s.log.Error("stopping the local cluster failed", "error", err)
		}
		cancel()
	}
}

func (s *Server) lifecycleClusters() []*dataplane.Cluster {
	if s.lifecycle == nil {
		return nil
	}
	var out []*dataplane.Cluster
	for _, c := range s.lifecycle.Clusters() {
		out = append(out, c)
	}
	return out
}

func (s *Server) ready(ctx context.Context) error {
	if err := s.store.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("control database unreachable")
	}
	if ok, err := s.store.MigrationsCurrent(ctx); err != nil || !ok {
		return fmt.Errorf("migrations not applied")
	}
	if s.cluster != nil {
		if err := s.cluster.Healthy(ctx); err != nil {
			return fmt.Errorf("local cluster is not healthy")
		}
	}
	return nil
}

func (s *Server) components(ctx context.Context) []api.StatusComponent {
	out := []api.StatusComponent{{Name: "api", Status: "operational"}}
	db := api.StatusComponent{Name: "control_database", Status: "operational"}
	if err := s.store.Pool.Ping(ctx); err != nil {
		db.Status, db.Message = "outage", "control database unreachable"
	}
	out = append(out, db)
	workers := api.StatusComponent{Name: "job_workers", Status: "operational"}
	if overdue, err := queue.Overdue(ctx, s.store.Pool, 2*time.Minute); err == nil && overdue > 0 {
		workers.Status, workers.Message = "degraded", fmt.Sprintf("%d jobs waiting for more than 2 minutes", overdue)
	}
	hooks := api.StatusComponent{Name: "webhook_delivery"}
	hooks.Status, hooks.Message = webhooks.Status(ctx, s.store.Pool)
	out = append(out, workers, hooks)
	if s.pitr != nil {
		// A failing archive_command stops the point-in-time window from advancing.
		arch := api.StatusComponent{Name: "wal_archiving", Status: "operational"}
		if a, err := s.pitr.Archiver(ctx); err != nil {
			arch.Status, arch.Message = "degraded", "the WAL archiver's state cannot be read"
		} else if !a.Healthy {
			arch.Status, arch.Message = "degraded", fmt.Sprintf("archiving WAL segment %s failed at %s (%d failures); point-in-time recovery stops advancing",
				a.LastFailedWAL, a.LastFailedAt.UTC().Format(time.RFC3339), a.FailedCount)
		}
		out = append(out, arch)
	}
	if rc := s.replicaComponent(ctx); rc != nil {
		out = append(out, *rc)
	}
	clusters, err := store.ListClusters(ctx, s.store.Pool)
	if err != nil {
		return out
	}
	handles := s.lifecycle.Clusters()
	for _, c := range clusters {
		comp := api.StatusComponent{Name: "cluster " + c.ID, Status: "operational", Region: c.Region}
		h, ok := handles[c.ID]
		switch {
		case !ok && c.NodeRole != "":
			if c.LastHeartbeatAt == nil || store.EffectiveState(c, time.Now()) == store.ClusterOffline {
				comp.Status, comp.Message = "outage", "its node stopped sending heartbeats"
			}
		case !ok:
			comp.Status, comp.Message = "degraded", "not reachable from this server"
		case h.Ping(ctx) != nil:
			comp.Status, comp.Message = "outage", "cluster does not answer"
		}
		out = append(out, comp)
	}
	return out
}

// crashAt returns the hook that SIGKILLs this process at the named point
// (tests of crash safety); nil without --unsafe-crash-at.
func crashAt(point string, log *slog.Logger) func(string) {
	if point == "" {
		return nil
	}
	return func(at string) {
		if at == point {
			log.Warn("crashing on purpose (--unsafe-crash-at)", "point", at)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}
