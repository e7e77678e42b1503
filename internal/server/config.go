// Package server is the composition root: it builds the embedded cluster,
// control database, job workers and HTTP API from configuration, runs them
// and shuts them down in order.
package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
)

// Config is everything `capydb server` can be told.
type Config struct {
	DataDir            string
	Listen             string
	DirectPort         int
	DirectPortExplicit bool
	PooledPort         int
	PooledPortExplicit bool
	// SessionPort is the session-mode pgBouncer's port.
	SessionPort         int
	SessionPortExplicit bool
	PublicHost          string
	// AllowOldPgBouncer starts the embedded cluster with a pgBouncer older
	// than 1.21 (prepared statements on the pooled URL then break).
	AllowOldPgBouncer bool
	// AllowPlaintext lets projects be switched to accept clients without
	// TLS (docs/network.md); off, every tenant line in both HBA files is
	// hostssl and the pgBouncers require TLS.
	AllowPlaintext bool
	// ReadReplica runs a hot standby of the embedded cluster on
	// ReadReplicaPort (0: the first free port from 18432), docs/fleet.md.
	ReadReplica     bool
	ReadReplicaPort int
	// BanThreshold failed logins from one address to one project within
	// BanWindow ban that address for BanDuration (0: the defaults 10, 5m, 30m).
	BanThreshold    int
	BanWindow       time.Duration
	BanDuration     time.Duration
	DatabaseURL     string
	Components      []string // api, worker
	Workers         int
	EmbeddedCluster bool
	LogFormat       string // auto, json, text
	LogLevel        string
	Version         string

	// WebhooksAllowInsecure permits http:// webhook URLs and private
	// receiver addresses (local development only).
	WebhooksAllowInsecure bool
	// WebhooksRetryBase is the wait before a delivery's second attempt; it
	// doubles after each failure (default 30s).
	WebhooksRetryBase time.Duration

	// Access control (see access.go): OIDC sessions, proxies, rate limits.
	OIDCIssuer, OIDCJWKSURL, OIDCAudience string
	// OIDCClientID (and OIDCClientSecret for a confidential client) enable
	// the dashboard's authorization-code sign-in with PKCE at OIDCIssuer.
	OIDCClientID, OIDCClientSecret string
	TrustedProxies                 string // comma-separated addresses / CIDR prefixes
	// RateLimits are per-client-address buckets by name ("api",
	// "cli_login_start", "cli_login_poll", "failed_auth"), as "20/s:100" or "off".
	RateLimits map[string]string

	// PreviewReaperInterval is how often expired previews are looked for
	// (default 15s).
	PreviewReaperInterval time.Duration
	// EphemeralDatabases turns on POST /v1/ephemeral-databases (off by
	// default); EphemeralCap is the unclaimed ones per client address or
	// organization (0 = 3); EphemeralReaperInterval is how often expired
	// ones are looked for (0 = 30s).
	EphemeralDatabases      bool
	EphemeralCap            int
	EphemeralReaperInterval time.Duration
	// Clock is the one clock of every scheduler (preview TTLs, backup
	// schedules and expiries); nil is the real time. Tests set it (the
	// hidden --unsafe-clock-file flag makes a bgsvc.FileClock).
	Clock bgsvc.Clock
	// CloneWorkers is the number of parallel copy workers of a snapshot
	// clone (0 = one per CPU, at least 2).
	CloneWorkers int

	// BackupURL is the gocloud.dev/blob bucket of backups, exports and
	// uploads (default file://<data-dir>/backups).
	BackupURL string
	// ImportsAllowPrivate lets imports read from private and loopback
	// addresses (local development only).
	ImportsAllowPrivate bool
	// BackupSchedulerInterval is how often due schedules and expired
	// backups are looked for (default 30s).
	BackupSchedulerInterval time.Duration
	// LogRetention is how long collected postgres log lines are kept
	// (default 7 days); LogSearch enables GET …/logs/search.
	LogRetention time.Duration
	LogSearch    bool
	// SMTPURL configures alert e-mails (smtp[s]://user:pass@host:port?from=…);
	// "" sends none.
	SMTPURL string
	// SamplerInterval is how often every project's metrics are sampled
	// and its usage alerts evaluated (default 1m).
	SamplerInterval time.Duration
	// ReadOnlyAtFullStorage switches a project's database to read-only when
	// its storage reaches 100 % of the plan and back below 95 %.
	ReadOnlyAtFullStorage bool
	// StorageLimitOverride replaces every plan's storage limit in the
	// sampler (tests only: fill a project to its limit with little data).
	StorageLimitOverride int64
	// PITR archives the embedded cluster's WAL with pgBackRest and takes
	// base backups (point-in-time recovery, docs/pitr.md).
	PITR bool
	// PITRWindowDays is how long base backups and WAL are kept (default 30).
	PITRWindowDays int
	// PITRBackupInterval is how often a base backup is taken (default 24h).
	PITRBackupInterval time.Duration
	// PITRRepoPath is pgBackRest's posix repository (default <data-dir>/pitr/repo).
	PITRRepoPath string
	// BackupVerifyDelay pauses between a dump and its verification (tests only).
	BackupVerifyDelay time.Duration
	// StudioTimeout replaces Studio's 15 s statement timeout (tests only).
	StudioTimeout time.Duration
	// ClerkAPIURL, VercelAPIURL and NetlifyAPIURL are the providers' API
	// base URLs ("" = the real ones; tests point them at stand-ins).
	ClerkAPIURL, VercelAPIURL, NetlifyAPIURL string

	// TLSCert and TLSKey are the operator's certificate chain and key for
	// both database ports (default: a certificate from a generated CA);
	// TLSCA is what GET /v1/ca.pem serves with them. The files are checked
	// every TLSReloadInterval and reloaded without a restart.
	TLSCert, TLSKey, TLSCA string
	TLSReloadInterval      time.Duration

	// Node runs `capydb node` (docs/fleet.md): the embedded cluster run for
	// a control plane elsewhere, whose control database DatabaseURL (the
	// node's own login) is; no API, no migrations, and a worker that claims
	// only this cluster's jobs.
	Node bool
	// HeartbeatInterval is how often a node reports that it is alive (default 5s).
	HeartbeatInterval time.Duration

	// Fast turns off durability in the embedded cluster (tests only).
	Fast bool
	// WarmPool is how many databases the embedded cluster keeps made ahead
	// of time for provisions to claim (0: none).
	WarmPool int
	// CrashAt kills the process at a named point of multi-step work (tests
	// only: --unsafe-crash-at warm-claim).
	CrashAt string
	// PrintTo receives the human-readable start banner (URL and first key).
	PrintTo *os.File
}

// DefaultDataDir is $XDG_DATA_HOME/capydb, i.e. ~/.local/share/capydb.
func DefaultDataDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "capydb")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".capydb-data"
	}
	return filepath.Join(home, ".local", "share", "capydb")
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir()
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return err
	}
	c.DataDir = abs
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.PublicHost == "" {
		c.PublicHost = "127.0.0.1"
	}
	if len(c.Components) == 0 {
		c.Components = []string{"api", "worker"}
	}
	for _, comp := range c.Components {
		if comp != "api" && comp != "worker" {
			return fmt.Errorf("--components: unknown component %q (want api, worker)", comp)
		}
	}
	if c.Workers <= 0 {
		c.Workers = 10
	}
	if c.WebhooksRetryBase < 0 {
		return fmt.Errorf("--webhooks-retry-base must not be negative")
	}
	if err := c.validateAccess(); err != nil {
		return err
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	if c.TLSCA != "" && c.TLSCert == "" {
		return fmt.Errorf("--tls-ca needs --tls-cert and --tls-key")
	}
	if c.Node && (c.DatabaseURL == "" || !c.EmbeddedCluster) {
		return fmt.Errorf("capydb node needs --database-url (the node's control-database URL from `capydb admin node add`)")
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if !c.EmbeddedCluster && c.DatabaseURL == "" {
		return fmt.Errorf("--database-url is required when --embedded-cluster=false")
	}
	return nil
}

func (c *Config) has(component string) bool {
	for _, comp := range c.Components {
		if strings.EqualFold(comp, component) {
			return true
		}
	}
	return false
}
