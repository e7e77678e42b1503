package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/integrations"
	"github.com/capydb/capydb/internal/server"
	"github.com/capydb/capydb/internal/store"
)

func init() { registrars = append(registrars, addServerCommands) }

// envName is the environment variable of a flag: CAPYDB_ and the flag's
// name in upper snake case (--webhooks-retry-base → CAPYDB_WEBHOOKS_RETRY_BASE).
func envName(flag string) string {
	return "CAPYDB_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// envFlags are the flags of cmd that have a CAPYDB_* variable: every flag
// the command declares itself, so a new flag cannot lack one, except
// --help and the hidden --unsafe-* test switches (a stray environment must
// not turn off fsync). only, when given, narrows the set.
func envFlags(cmd *cobra.Command, only ...string) []*pflag.Flag {
	var out []*pflag.Flag
	cmd.LocalNonPersistentFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Hidden || (len(only) > 0 && !slices.Contains(only, f.Name)) {
			return
		}
		out = append(out, f)
	})
	return out
}

// applyEnv sets every flag of cmd that was not given on the command line
// from its environment variable (the flag wins when given), and reports
// which flags ended up explicit.
func applyEnv(cmd *cobra.Command, only ...string) (map[string]bool, error) {
	explicit := map[string]bool{}
	for _, f := range envFlags(cmd, only...) {
		if f.Changed {
			explicit[f.Name] = true
			continue
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok && v != "" {
			if err := cmd.Flags().Set(f.Name, v); err != nil {
				return nil, fmt.Errorf("%s: %w", env, err)
			}
			explicit[f.Name] = true
		}
	}
	return explicit, nil
}

func newLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "auto", "":
		if term.IsTerminal(int(os.Stderr.Fd())) {
			return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be auto, json or text")
}

func addServerCommands(root *cobra.Command) {
	var cfg server.Config
	var components string
	var rlAPI, rlLogin, rlPoll, rlFailed, rlEphemeral, rlReceivers, clockFile string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the CapyDB server (API, job workers and the embedded cluster)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			explicit, err := applyEnv(cmd)
			if err != nil {
				return err
			}
			cfg.DirectPortExplicit, cfg.PooledPortExplicit = explicit["direct-port"], explicit["pooled-port"]
			cfg.SessionPortExplicit = explicit["session-port"]
			cfg.Components = splitList(components)
			cfg.RateLimits = map[string]string{auth.BucketAPI: rlAPI, auth.BucketLoginStart: rlLogin,
				auth.BucketLoginPoll: rlPoll, auth.BucketFailedAuth: rlFailed, auth.BucketEphemeralCreate: rlEphemeral,
				auth.BucketIntegrationReceiver: rlReceivers}
			cfg.Version = Version
			if clockFile != "" {
				cfg.Clock = bgsvc.FileClock(clockFile)
			}
			log, err := newLogger(cfg.LogFormat, cfg.LogLevel)
			if err != nil {
				return err
			}
			return runServer(cmd.Context(), cfg, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", server.DefaultDataDir(), "data directory (embedded cluster, keys, TLS)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address of the HTTP API")
	f.IntVar(&cfg.DirectPort, "direct-port", 5432, "direct Postgres port of the embedded cluster")
	f.IntVar(&cfg.PooledPort, "pooled-port", 6432, "pgBouncer port of the embedded cluster (transaction pooling)")
	f.IntVar(&cfg.SessionPort, "session-port", 6433, "session-mode pgBouncer port of the embedded cluster (SET, LISTEN, advisory locks, WITH HOLD cursors keep working)")
	f.StringVar(&cfg.PublicHost, "public-host", "127.0.0.1", "host written into connection URLs")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "certificate chain (PEM) of both database ports instead of the generated one; reloaded when it changes")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "private key (PEM) of --tls-cert")
	f.StringVar(&cfg.TLSCA, "tls-ca", "", "CA certificate that signs --tls-cert, served at GET /v1/ca.pem (default: none served; clients use their system roots)")
	f.DurationVar(&cfg.TLSReloadInterval, "tls-reload-interval", 30*time.Second, "how often --tls-cert, --tls-key and --tls-ca are checked for changes")
	f.BoolVar(&cfg.AllowOldPgBouncer, "allow-old-pgbouncer", false, "run the embedded cluster with a pgBouncer older than 1.21 instead of refusing to start; "+
		"prepared statements on the pooled URL then fail (\"prepared statement already exists\") or return wrong answers (pgx, node-postgres, psycopg 3, JDBC use them by default)")
	f.BoolVar(&cfg.AllowPlaintext, "allow-plaintext", false, "let projects be switched to accept database clients without TLS (both HBA files then get non-TLS lines for them); off: TLS only")
	f.BoolVar(&cfg.ReadReplica, "read-replica", false, "run a hot standby of the embedded cluster (streaming replication) that projects can attach as a read replica")
	f.IntVar(&cfg.ReadReplicaPort, "read-replica-port", 0, "port of the --read-replica standby (default: the first free port from 18432)")
	f.IntVar(&cfg.BanThreshold, "ban-threshold", 10, "failed logins from one address to one project within --ban-window that ban the address")
	f.DurationVar(&cfg.BanWindow, "ban-window", 5*time.Minute, "window in which --ban-threshold failed logins ban an address")
	f.DurationVar(&cfg.BanDuration, "ban-duration", 30*time.Minute, "how long a ban lasts (lift it earlier with capydb network unban)")
	f.StringVar(&cfg.DatabaseURL, "database-url", "", "external control database (default: on the embedded cluster)")
	f.StringVar(&components, "components", "api,worker", "components to run: api, worker")
	f.IntVar(&cfg.Workers, "workers", 10, "jobs run concurrently by this process")
	f.BoolVar(&cfg.EmbeddedCluster, "embedded-cluster", true, "run the embedded Postgres + pgBouncer cluster")
	f.StringVar(&cfg.LogFormat, "log-format", "auto", "auto, json or text")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&cfg.WebhooksAllowInsecure, "webhooks-allow-insecure", false, "allow http:// webhook URLs and private receiver addresses (local development only)")
	f.DurationVar(&cfg.WebhooksRetryBase, "webhooks-retry-base", 30*time.Second, "wait before a webhook delivery's second attempt; doubles after each failure (max 1h)")
	f.StringVar(&cfg.OIDCIssuer, "oidc-issuer", "", "accept human session JWTs (e.g. Clerk) from this OIDC issuer (exact iss)")
	f.StringVar(&cfg.OIDCJWKSURL, "oidc-jwks-url", "", "JWKS of the issuer (default: discovered from the issuer)")
	f.StringVar(&cfg.OIDCAudience, "oidc-audience", "", "required aud of session JWTs (default: not checked)")
	f.StringVar(&cfg.OIDCClientID, "oidc-client-id", "", "dashboard sign-in with the issuer's authorization-code flow + PKCE as this client (set --oidc-audience to it too)")
	f.StringVar(&cfg.OIDCClientSecret, "oidc-client-secret", "", "the client's secret, for an issuer that registers the dashboard as a confidential client")
	f.StringVar(&cfg.TrustedProxies, "trusted-proxies", "", "comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed")
	f.StringVar(&rlAPI, "rate-limit-api", "20/s:100", "per-client bucket for authenticated API requests (EVENTS/UNIT:BURST or off)")
	f.StringVar(&rlLogin, "rate-limit-cli-login", "10/m:5", "per-client bucket for starting device logins")
	f.StringVar(&rlPoll, "rate-limit-cli-poll", "120/m:20", "per-client bucket for device-login polls")
	f.StringVar(&rlFailed, "rate-limit-failed-auth", "10/m:10", "per-client bucket of failed authentications (then 429 instead of 401)")
	f.StringVar(&rlEphemeral, "rate-limit-ephemeral", "10/h:10", "per-client bucket for creating ephemeral databases")
	f.StringVar(&rlReceivers, "rate-limit-integrations", "20/s:20", "per-project bucket of the inbound integration receivers (Clerk, Auth0, Better Auth, Vercel, Netlify)")
	f.StringVar(&cfg.ClerkAPIURL, "clerk-api-url", integrations.DefaultClerkURL, "base URL of the Clerk Backend API (user backfill, secret-key checks)")
	f.StringVar(&cfg.VercelAPIURL, "vercel-api-url", integrations.DefaultVercelURL, "base URL of the Vercel REST API (env sync, deployment webhooks)")
	f.StringVar(&cfg.NetlifyAPIURL, "netlify-api-url", integrations.DefaultNetlifyURL, "base URL of the Netlify API (env sync, deploy notifications)")
	f.DurationVar(&cfg.PreviewReaperInterval, "preview-reaper-interval", 15*time.Second, "how often expired previews are queued for deletion")
	f.BoolVar(&cfg.EphemeralDatabases, "ephemeral-databases", false, "offer ephemeral databases: created without an account, destroyed after 72 hours unless claimed")
	f.IntVar(&cfg.EphemeralCap, "ephemeral-cap", 3, "unclaimed ephemeral databases per client address (or per organization with a key)")
	f.DurationVar(&cfg.EphemeralReaperInterval, "ephemeral-reaper-interval", 30*time.Second, "how often expired ephemeral databases are queued for deletion")
	f.IntVar(&cfg.CloneWorkers, "clone-workers", 0, "parallel copy workers of a preview clone (0 = one per CPU, at least 2)")
	f.StringVar(&cfg.BackupURL, "backup-url", "", "blob store of backups, exports and uploads (file://, s3://...; default file://<data-dir>/backups)")
	f.BoolVar(&cfg.PITR, "pitr", true, "archive the embedded cluster's WAL with pgBackRest and take base backups (point-in-time recovery)")
	f.IntVar(&cfg.PITRWindowDays, "pitr-window-days", 30, "how many days of base backups and WAL point-in-time recovery keeps")
	f.DurationVar(&cfg.PITRBackupInterval, "pitr-backup-interval", 24*time.Hour, "how often a base backup is taken (full weekly, differential otherwise)")
	f.StringVar(&cfg.PITRRepoPath, "pitr-repo", "", "pgBackRest repository directory (default <data-dir>/pitr/repo)")
	f.BoolVar(&cfg.ImportsAllowPrivate, "imports-allow-private", false, "let imports read from private and loopback addresses (local development only)")
	f.DurationVar(&cfg.LogRetention, "log-retention", 7*24*time.Hour, "how long collected postgres log lines are kept")
	f.BoolVar(&cfg.LogSearch, "log-search", false, "enable the searchable postgres log archive (GET /v1/projects/{id}/logs/search)")
	f.StringVar(&cfg.SMTPURL, "smtp-url", "", "SMTP server of alert e-mails: smtp://user:pass@host:587?from=alerts@example.com (smtps:// for implicit TLS, &tls=none for a loopback relay); unset: no e-mail")
	f.DurationVar(&cfg.SamplerInterval, "sampler-interval", time.Minute, "how often every project's metrics are sampled and its usage alerts evaluated")
	f.BoolVar(&cfg.ReadOnlyAtFullStorage, "readonly-at-full-storage", false, "switch a project's database to read-only (instance.set_readonly) when its storage reaches 100 % of the plan, and back below 95 %")
	f.Int64Var(&cfg.StorageLimitOverride, "unsafe-storage-limit", 0, "replace every plan's storage limit in the usage sampler, in bytes (tests only)")
	_ = f.MarkHidden("unsafe-storage-limit")
	f.DurationVar(&cfg.BackupSchedulerInterval, "backup-scheduler-interval", 30*time.Second, "how often due backup schedules and expired backups are handled")
	f.StringVar(&clockFile, "unsafe-clock-file", "", "file holding an RFC 3339 time every scheduler uses as now (tests only)")
	_ = f.MarkHidden("unsafe-clock-file")
	f.DurationVar(&cfg.BackupVerifyDelay, "unsafe-backup-verify-delay", 0, "pause between a backup's dump and its verification (tests only)")
	_ = f.MarkHidden("unsafe-backup-verify-delay")
	f.DurationVar(&cfg.StudioTimeout, "unsafe-studio-timeout", 0, "Studio statement timeout instead of 15s (tests only)")
	_ = f.MarkHidden("unsafe-studio-timeout")
	f.IntVar(&cfg.WarmPool, "warm-pool", 5, "databases the embedded cluster keeps made ahead of time, so a new project claims one instead of waiting for CREATE DATABASE (0: off)")
	f.StringVar(&cfg.CrashAt, "unsafe-crash-at", "", "kill the server at a named point (warm-claim) to test crash safety (tests only)")
	_ = f.MarkHidden("unsafe-crash-at")
	f.BoolVar(&cfg.Fast, "unsafe-no-fsync", false, "turn off fsync in the embedded cluster (tests only: data may be lost on a crash)")
	_ = f.MarkHidden("unsafe-no-fsync")
	root.AddCommand(cmd)

	admin := &cobra.Command{Use: "admin", Short: "Operator commands that work directly on the control database"}
	var dataDir, databaseURL, org, name, scopes string
	createKey := &cobra.Command{
		Use:   "create-key",
		Short: "Mint an organization API key (printed once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := applyEnv(cmd, "data-dir", "database-url"); err != nil {
				return err
			}
			if org == "" {
				return usageError("--org is required")
			}
			list := splitList(scopes)
			for _, sc := range list {
				if sc != auth.ScopeAll && !slices.Contains(auth.AllScopes, sc) {
					return usageError(fmt.Sprintf("--scopes: unknown scope %q", sc))
				}
			}
			dsn, err := server.ControlDSN(databaseURL, dataDir)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			st, err := store.Open(ctx, dsn, 2)
			if err != nil {
				return err
			}
			defer st.Close()
			o, err := store.GetOrganizationByRef(ctx, st.Pool, org)
			if err != nil {
				return fmt.Errorf("organization %q not found", org)
			}
			plain, k, err := auth.MintKey(ctx, st.Pool, o.ID, name, list, "api")
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created key %s for organization %s (%s); it is shown only once:\n", k.ID, o.Slug, o.ID)
			fmt.Fprintln(cmd.OutOrStdout(), plain)
			return nil
		},
	}
	cf := createKey.Flags()
	cf.StringVar(&dataDir, "data-dir", server.DefaultDataDir(), "data directory of the server")
	cf.StringVar(&databaseURL, "database-url", "", "control database URL")
	cf.StringVar(&org, "org", "", "organization id or slug")
	cf.StringVar(&name, "name", "operator key", "key name")
	cf.StringVar(&scopes, "scopes", "*", "comma-separated scopes")
	admin.AddCommand(createKey, adminCutoverCmd())
	addFleetAdmin(admin)
	root.AddCommand(admin)
}

func runServer(parent context.Context, cfg server.Config, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	banner := []string{"", "CapyDB is running.", "  API:       " + srv.URL}
	if srv.Cluster() != nil {
		banner = append(banner,
			"  Postgres:  "+cfg.PublicHost+":"+strconv.Itoa(srv.Cluster().DirectPort())+" (direct), "+
				strconv.Itoa(srv.Cluster().PooledPort())+" (pooled, pgBouncer), "+
				strconv.Itoa(srv.Cluster().SessionPort())+" (pooled, session mode)")
	}
	if srv.BootstrapKey != "" {
		banner = append(banner, "  Admin key: "+srv.BootstrapKey+"   (shown once; also in "+cfg.DataDir+"/"+server.BootstrapKeyFile+")")
	} else {
		banner = append(banner, "  Admin key: see "+cfg.DataDir+"/"+server.BootstrapKeyFile+" (created on first start)")
	}
	fmt.Fprintln(os.Stdout, strings.Join(banner, "\n")+"\n")
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-srv.Errors():
		log.Error("server failed", "error", err)
	}
	srv.Stop(context.Background())
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// usageError is a command-line mistake (exit code 2).
type usageError string

func (e usageError) Error() string { return string(e) }
