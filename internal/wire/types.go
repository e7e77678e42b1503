// Package wire holds the JSON shapes the server publishes and the client
// reads: one Go type per object, named as its OpenAPI schema (huma names
// schemas after the Go type). It imports nothing of ours, so both api and
// apiclient can stand on it.
package wire

import (
	"encoding/json"
	"time"
)

// Organization is the wire form of an organization.
type Organization struct {
	ID                    string     `json:"id"`
	Name                  string     `json:"name"`
	Slug                  string     `json:"slug"`
	BillingPlan           string     `json:"billing_plan"`
	BillingStatus         string     `json:"billing_status"`
	BillingProvider       string     `json:"billing_provider"`
	BillingEmail          *string    `json:"billing_email,omitempty"`
	ClerkOrganizationID   *string    `json:"clerk_organization_id,omitempty"`
	ClerkOrganizationSlug *string    `json:"clerk_organization_slug,omitempty"`
	SuspendedAt           *time.Time `json:"suspended_at,omitempty"`
	SuspendedReason       *string    `json:"suspended_reason,omitempty"`
	CreatedAt             time.Time  `json:"created_at"`
	UpdatedAt             time.Time  `json:"updated_at"`
}

// Project is the wire form of a project.
type Project struct {
	ID                     string    `json:"id"`
	OrganizationID         string    `json:"organization_id"`
	Name                   string    `json:"name"`
	Slug                   string    `json:"slug"`
	Environment            string    `json:"environment"`
	AlwaysOn               bool      `json:"always_on"`
	State                  string    `json:"state"`
	RuntimeStatus          string    `json:"runtime_status,omitempty"`
	Plan                   string    `json:"plan"`
	Region                 string    `json:"region"`
	ClusterID              string    `json:"cluster_id,omitempty"`
	PostgresVersion        string    `json:"postgres_version,omitempty"`
	PostgresChannel        string    `json:"postgres_channel,omitempty"`
	DatabaseName           string    `json:"database_name"`
	RoleName               string    `json:"role_name"`
	PublicHost             string    `json:"public_host,omitempty"`
	DirectPort             int       `json:"direct_port"`
	PooledPort             int       `json:"pooled_port"`
	SSLMode                string    `json:"ssl_mode,omitempty"`
	MaxConnections         int       `json:"max_connections"`
	StatementTimeout       string    `json:"statement_timeout"`
	IdleTransactionTimeout string    `json:"idle_transaction_timeout"`
	StorageLimitBytes      int64     `json:"storage_limit_bytes"`
	LatestJobID            *string   `json:"latest_job_id,omitempty"`
	LastError              *string   `json:"last_error,omitempty"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
}

// ConnectionInfo is the wire form of a project's URLs.
type ConnectionInfo struct {
	Username  string `json:"username"`
	DirectURL string `json:"direct_url,omitempty"`
	PooledURL string `json:"pooled_url,omitempty"`
	// SessionURL is an addition to the spec: the same through the
	// session-mode pgBouncer (session state kept, see docs/connections.md).
	SessionURL string `json:"session_url,omitempty" doc:"† Addition to API.md: the same through the session-mode pgBouncer (its own port): SET, LISTEN/NOTIFY, advisory locks and WITH HOLD cursors keep working; sent when the cluster has one (always self-hosted)."`
	// ReadReplicaURLs are read-only URLs on the cluster's hot standby.
	ReadReplicaURLs []string `json:"read_replica_urls,omitempty" doc:"† Addition to API.md: read-only URLs (same role and password) on the hot standby of the project's cluster, one per attached read replica (POST /v1/projects/{id}/read-replicas); writes fail with SQLSTATE 25006."`
}

// ReadReplica is a project's attachment to its cluster's hot standby.
type ReadReplica struct {
	ID        string    `json:"id"`
	ProjectID string    `json:"project_id"`
	ClusterID string    `json:"cluster_id"`
	Port      int       `json:"port"`
	CreatedAt time.Time `json:"created_at"`
}

// ReplicaStatus is the replication state of a cluster's hot standby.
type ReplicaStatus struct {
	Port       int     `json:"port"`
	Streaming  bool    `json:"streaming"`
	LagBytes   int64   `json:"lag_bytes"`
	LagSeconds float64 `json:"lag_seconds"`
}

// PreviewDatabase is the wire form of a preview.
type PreviewDatabase struct {
	ID                string     `json:"id"`
	ProjectID         string     `json:"project_id"`
	Name              string     `json:"name"`
	Mode              string     `json:"mode"`
	State             string     `json:"state"`
	TTLExpiresAt      time.Time  `json:"ttl_expires_at"`
	DatabaseName      string     `json:"database_name"`
	RoleName          string     `json:"role_name"`
	PublicHost        string     `json:"public_host,omitempty"`
	DirectPort        int        `json:"direct_port"`
	PooledPort        int        `json:"pooled_port"`
	SSLMode           string     `json:"ssl_mode,omitempty"`
	SourceKind        *string    `json:"source_kind,omitempty"`
	SourceDatabase    *string    `json:"source_database,omitempty"`
	SourceBackupKey   *string    `json:"source_backup_key,omitempty"`
	SourceRestoreTime *time.Time `json:"source_restore_time,omitempty"`
	LastError         *string    `json:"last_error,omitempty"`
	CloneStrategy     *string    `json:"clone_strategy,omitempty"`
	CloneDurationMS   *int64     `json:"clone_duration_ms,omitempty"`
	LatestJobID       *string    `json:"latest_job_id,omitempty"`
	Protected         bool       `json:"protected" doc:"† Addition to API.md: the preview never expires (its ttl_expires_at is not enforced)"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

// RegionDetail describes a region.
type RegionDetail struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	Location    string `json:"location"`
}

// PostgresVersion is one offered major.
type PostgresVersion struct {
	Version         string `json:"version"`
	Channel         string `json:"channel"`
	Default         bool   `json:"default"`
	ProductionReady bool   `json:"production_ready"`
}

// Principal is the wire form of the caller.
type Principal struct {
	AuthSource     string   `json:"auth_source"`
	OrganizationID string   `json:"organization_id,omitempty"`
	Scopes         []string `json:"scopes"`
	IsAdmin        bool     `json:"is_admin"`
	UserID         string   `json:"user_id,omitempty"`
	Role           string   `json:"role,omitempty"`
	APIKeyID       string   `json:"api_key_id,omitempty"`
	ProjectID      string   `json:"project_id,omitempty"`
	// Sessions: the issuer's organization claims as sent.
	ClerkOrganizationID   string `json:"clerk_organization_id,omitempty"`
	ClerkOrganizationRole string `json:"clerk_organization_role,omitempty"`
	ClerkOrganizationSlug string `json:"clerk_organization_slug,omitempty"`
}

// Job is the wire form of a job.
type Job struct {
	ID                  string          `json:"id"`
	Type                string          `json:"type"`
	State               string          `json:"state"`
	OrganizationID      string          `json:"organization_id"`
	ProjectID           *string         `json:"project_id,omitempty"`
	PreviewDatabaseID   *string         `json:"preview_database_id,omitempty"`
	ClusterID           *string         `json:"cluster_id,omitempty"`
	Attempts            int             `json:"attempts"`
	MaxAttempts         int             `json:"max_attempts"`
	RetryClassification string          `json:"retry_classification"`
	Error               *string         `json:"error,omitempty"`
	LastExitCode        *int            `json:"last_exit_code,omitempty"`
	LastStdout          *string         `json:"last_stdout,omitempty"`
	LastStderr          *string         `json:"last_stderr,omitempty"`
	LockedResource      *string         `json:"locked_resource,omitempty"`
	ClaimedBy           *string         `json:"claimed_by,omitempty"`
	ClaimedAt           *time.Time      `json:"claimed_at,omitempty"`
	StartedAt           *time.Time      `json:"started_at,omitempty"`
	CompletedAt         *time.Time      `json:"completed_at,omitempty"`
	Result              json.RawMessage `json:"result,omitempty"`
	Progress            json.RawMessage `json:"progress,omitempty"`
	CreatedAt           time.Time       `json:"created_at"`
	UpdatedAt           time.Time       `json:"updated_at"`
}

// Cluster is the wire form of a cluster.
type Cluster struct {
	ID                          string   `json:"id"`
	Name                        string   `json:"name"`
	Provider                    string   `json:"provider"`
	Region                      string   `json:"region"`
	PublicHost                  string   `json:"public_host"`
	DirectPort                  int      `json:"direct_port"`
	PooledPort                  int      `json:"pooled_port"`
	PostgresVersion             string   `json:"postgres_version"`
	Extensions                  []string `json:"extensions"`
	State                       string   `json:"state"`
	SupportsPointInTimeRecovery bool     `json:"supports_point_in_time_recovery"`
	BackupStorage               string   `json:"backup_storage,omitempty"`
	// Projects † counts the cluster's live projects (its load, docs/fleet.md).
	Projects int `json:"projects"`
	// LastHeartbeatAt † is when the cluster's node last reported (absent for
	// the embedded cluster, which has no node of its own).
	LastHeartbeatAt *time.Time `json:"last_heartbeat_at,omitempty"`
	// ReadReplica † is the cluster's hot standby and its lag (absent: none).
	ReadReplica *ReplicaStatus `json:"read_replica,omitempty" doc:"† The cluster's hot standby (capydb server --read-replica): its port, whether it streams, and its replay lag in bytes and seconds (pg_stat_replication)."`
	// ReplicaOf † names the primary of a standby cluster.
	ReplicaOf string `json:"replica_of,omitempty" doc:"† For a standby cluster (capydb admin cluster add-replica): the id of the cluster it streams from. Standby clusters take no projects; read replicas attach to them."`
	// Replication † is a standby cluster's state as its primary last reported it.
	Replication *ReplicaStatus `json:"replication,omitempty" doc:"† For a standby cluster: whether it streams and its replay lag in bytes and seconds, from its primary's pg_stat_replication as the primary's node last reported it (every heartbeat); port is the standby's direct port."`
	// FailedOverTo † names the standby that replaced a fenced cluster.
	FailedOverTo string `json:"failed_over_to,omitempty" doc:"† For a fenced cluster (state fenced): the standby cluster promoted in its place (capydb admin cluster failover)."`
}

// RestorePoint is the wire form of a restore point.
type RestorePoint struct {
	ID                 string     `json:"id"`
	OrganizationID     string     `json:"organization_id"`
	ProjectID          string     `json:"project_id"`
	Label              string     `json:"label"`
	Kind               string     `json:"kind"`
	BackupID           *string    `json:"backup_id,omitempty"`
	BackupKey          *string    `json:"backup_key,omitempty"`
	PITRTime           *time.Time `json:"pitr_time,omitempty"`
	Note               *string    `json:"note,omitempty"`
	State              string     `json:"state"`
	CreatedByActorKind string     `json:"created_by_actor_kind"`
	CreatedByActorID   *string    `json:"created_by_actor_id,omitempty"`
	CreatedAt          time.Time  `json:"created_at"`
	UpdatedAt          time.Time  `json:"updated_at"`
}

// ProjectExport is the wire form of an export.
type ProjectExport struct {
	ID             string    `json:"id"`
	ProjectID      string    `json:"project_id"`
	DatabaseName   string    `json:"database_name"`
	State          string    `json:"state"`
	SizeBytes      int64     `json:"size_bytes"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at"`
	JobID          *string   `json:"job_id,omitempty"`
	ChecksumSHA256 *string   `json:"checksum_sha256,omitempty"`
}

// Backup is the wire form of a backup.
type Backup struct {
	ID                string     `json:"id"`
	ProjectID         string     `json:"project_id"`
	BackupKey         string     `json:"backup_key"`
	DatabaseName      string     `json:"database_name"`
	Label             *string    `json:"label,omitempty"`
	State             string     `json:"state"`
	SizeBytes         int64      `json:"size_bytes"`
	VerificationState string     `json:"verification_state"`
	VerifiedAt        *time.Time `json:"verified_at,omitempty"`
	VerificationError *string    `json:"verification_error,omitempty"`
	Kind              string     `json:"kind,omitempty"`
	ChecksumSHA256    *string    `json:"checksum_sha256,omitempty"`
	ExpiresAt         *time.Time `json:"expires_at,omitempty"`
	JobID             *string    `json:"job_id,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
}

// ScheduledBackup is the wire form of a backup schedule.
type ScheduledBackup struct {
	ID             string     `json:"id"`
	OrganizationID string     `json:"organization_id"`
	ProjectID      string     `json:"project_id"`
	CronHour       int        `json:"cron_hour"`
	CronMinute     int        `json:"cron_minute"`
	IsActive       bool       `json:"is_active"`
	Label          string     `json:"label"`
	RetentionDays  int        `json:"retention_days"`
	LastJobID      *string    `json:"last_job_id,omitempty"`
	LastRunAt      *time.Time `json:"last_run_at,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// APIKey is the wire form of a key (never the plaintext).
type APIKey struct {
	ID              string     `json:"id"`
	OrganizationID  string     `json:"organization_id"`
	Name            string     `json:"name"`
	KeyPrefix       string     `json:"key_prefix"`
	Scopes          []string   `json:"scopes"`
	ProjectID       *string    `json:"project_id,omitempty"`
	Source          string     `json:"source"`
	DeviceName      *string    `json:"device_name,omitempty"`
	CreatedByUserID *string    `json:"created_by_user_id,omitempty"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
	LastUsedAt      *time.Time `json:"last_used_at,omitempty"`
	RevokedAt       *time.Time `json:"revoked_at,omitempty"`
	IsActive        bool       `json:"is_active"`
	CreatedAt       time.Time  `json:"created_at"`
}

// WebhookEndpoint is the wire form of a webhook endpoint.
type WebhookEndpoint struct {
	ID             string    `json:"id"`
	OrganizationID string    `json:"organization_id"`
	URL            string    `json:"url"`
	Description    *string   `json:"description,omitempty"`
	EventTypes     []string  `json:"event_types" doc:"subscribed events; [] = all events"`
	IsActive       bool      `json:"is_active"`
	Health         string    `json:"health" enum:"healthy,failing,disabled"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// WebhookDelivery is the wire form of one delivery.
type WebhookDelivery struct {
	ID             string          `json:"id"`
	OrganizationID string          `json:"organization_id"`
	EndpointID     string          `json:"endpoint_id"`
	EventType      string          `json:"event_type"`
	EventID        string          `json:"event_id,omitempty"`
	Payload        json.RawMessage `json:"payload" doc:"the exact envelope that is (or was) posted"`
	State          string          `json:"state" enum:"pending,delivered,failed"`
	Attempts       int             `json:"attempts"`
	MaxAttempts    int             `json:"max_attempts"`
	ResponseStatus *int            `json:"response_status,omitempty"`
	LastError      *string         `json:"last_error,omitempty"`
	NextAttemptAt  *time.Time      `json:"next_attempt_at,omitempty"`
	DeliveredAt    *time.Time      `json:"delivered_at,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

// Request bodies: the server decodes them and the client sends them. Their
// optional lists accept null (nullable:"true"); response lists never are.

// CreateAPIKeyBody is POST /v1/organizations/{orgID}/api-keys.
type CreateAPIKeyBody struct {
	Name       string     `json:"name" doc:"1-100 characters"`
	Scopes     []string   `json:"scopes" nullable:"true" doc:"at least one scope, or *"`
	ProjectID  string     `json:"project_id,omitempty" doc:"makes a project-scoped key"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty" doc:"a future time"`
	DeviceName string     `json:"device_name,omitempty" doc:"at most 100 characters"`
}

// CLILoginStartBody is POST /v1/cli/login/sessions (every field optional;
// "" means not given).
type CLILoginStartBody struct {
	DeviceName string     `json:"device_name,omitempty" doc:"at most 100 characters"`
	Name       string     `json:"name,omitempty" doc:"name of the key to mint (default CapyDB CLI, or CapyDB Agent)"`
	Source     string     `json:"source,omitempty" doc:"cli (default) or agent"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty" doc:"expiry of the key to mint: future, at most 365 days away"`
	Scopes     []string   `json:"scopes,omitempty" nullable:"true" doc:"scopes of the key to mint (default: the approver's)"`
}

// CreateImportRequest is POST /v1/projects/{projectID}/imports.
type CreateImportRequest struct {
	Confirm   bool   `json:"confirm"`
	Recreate  bool   `json:"recreate,omitempty"`
	SourceURL string `json:"source_url,omitempty"`
	UploadKey string `json:"upload_key,omitempty"`
}

// CreatePreviewBody is POST /v1/projects/{projectID}/preview-databases.
type CreatePreviewBody struct {
	Name     string `json:"name,omitempty" doc:"1-63 letters, digits, -, _ and ., starting with a letter or digit; generated when absent"`
	Mode     string `json:"mode,omitempty" doc:"empty or clone (default clone)"`
	TTLHours int    `json:"ttl_hours,omitempty" doc:"1-168; 0 or absent = 24"`
	// Protected is an addition to the spec.
	Protected bool `json:"protected,omitempty" doc:"† Addition to API.md: a protected preview never expires (the TTL reaper skips it); Supabase branches created through /api/supabase are protected"`
}

// CreateProjectBody is POST /v1/projects.
type CreateProjectBody struct {
	Name            string `json:"name" doc:"1-64 characters"`
	Slug            string `json:"slug,omitempty" doc:"lower-case letters, digits and -, starting with a letter; derived from the name when absent"`
	Environment     string `json:"environment,omitempty" doc:"production (default) or non_production"`
	Region          string `json:"region,omitempty"`
	PostgresVersion string `json:"postgres_version,omitempty"`
	OrganizationID  string `json:"organization_id,omitempty"`
	ClusterID       string `json:"cluster_id,omitempty" doc:"compatibility field: place the project on this cluster"`
	AlwaysOn        *bool  `json:"always_on,omitempty"`
}

// CreateRestoreRequest is POST /v1/projects/{projectID}/restores.
type CreateRestoreRequest struct {
	BackupKey               string `json:"backup_key,omitempty"`
	RestoreTime             string `json:"restore_time,omitempty"`
	RestorePointID          string `json:"restore_point_id,omitempty"`
	TargetKind              string `json:"target_kind,omitempty" doc:"new_preview (default), preview or project"`
	PreviewID               string `json:"preview_id,omitempty"`
	PreviewName             string `json:"preview_name,omitempty"`
	TTLHours                int    `json:"ttl_hours,omitempty"`
	ApprovalToken           string `json:"approval_token,omitempty"`
	AllowUnverifiedBackup   bool   `json:"allow_unverified_backup,omitempty"`
	Recreate                bool   `json:"recreate,omitempty" doc:"compatibility; no effect"`
	ConfirmProjectOverwrite bool   `json:"confirm_project_overwrite,omitempty" doc:"compatibility; ignored"`
}

// CreateRestorePointRequest is POST /v1/projects/{projectID}/restore-points.
type CreateRestorePointRequest struct {
	Label     string `json:"label" doc:"1-120 characters"`
	Kind      string `json:"kind,omitempty" doc:"backup or pitr (snapshot = pitr)"`
	BackupKey string `json:"backup_key,omitempty"`
	PITRTime  string `json:"pitr_time,omitempty"`
	Note      string `json:"note,omitempty" doc:"at most 1000 characters"`
}

// CreateWebhookEndpointBody is CreateWebhookEndpointRequest.
type CreateWebhookEndpointBody struct {
	URL         string   `json:"url" doc:"https:// receiver URL with a public address"`
	Description string   `json:"description,omitempty" doc:"at most 500 characters"`
	EventTypes  []string `json:"event_types,omitempty" nullable:"true" doc:"omitted, null or [] = all events"`
	IsActive    *bool    `json:"is_active,omitempty" doc:"default true"`
}

// PITRRestoreTarget reports the point in time a restore resolved to.
type PITRRestoreTarget struct {
	RequestedRestoreTime time.Time `json:"requested_restore_time"`
	RestoreTime          time.Time `json:"restore_time" doc:"the effective time"`
	RestoreTimeClamped   bool      `json:"restore_time_clamped" doc:"the requested time was past the latest restorable point"`
}

// Job results (API.md §4.20). Job.result carries one of these, chosen by
// Job.type; the document publishes Job.result as their oneOf.

// PreviewJobResult is the result of branch.create and branch.reset.
type PreviewJobResult struct {
	CloneStrategy   string `json:"clone_strategy" doc:"how the contents were built (e.g. template, dump_restore, empty)"`
	CloneDurationMS int64  `json:"clone_duration_ms"`
}

// BackupJobResult is the result of project.backup.
type BackupJobResult struct {
	BackupID  string `json:"backup_id"`
	BackupKey string `json:"backup_key"`
	SizeBytes int64  `json:"size_bytes"`
}

// ExportJobResult is the result of project.export.
type ExportJobResult struct {
	ExportID  string `json:"export_id"`
	SizeBytes int64  `json:"size_bytes"`
}

// RestoreJobResult is the result of project.restore. The time fields are
// set for point-in-time sources only.
type RestoreJobResult struct {
	TargetKind           string     `json:"target_kind"`
	PreviewID            string     `json:"preview_id,omitempty" doc:"the preview restored into (target_kind new_preview or preview)"`
	RequestedRestoreTime *time.Time `json:"requested_restore_time,omitempty"`
	RestoreTime          *time.Time `json:"restore_time,omitempty"`
	RestoreTimeClamped   *bool      `json:"restore_time_clamped,omitempty"`
}

// JobProgress is Job.progress while a long job runs.
type JobProgress struct {
	Phase      string `json:"phase" doc:"e.g. dumping, verifying, copying_data, building_indexes"`
	Percent    *int   `json:"percent,omitempty" doc:"0-100, when known"`
	BytesDone  *int64 `json:"bytes_done,omitempty"`
	BytesTotal *int64 `json:"bytes_total,omitempty"`
}

// ExtensionJobResult is the result of project.extension_enable, _disable and _update.
type ExtensionJobResult struct {
	Name    string `json:"name"`
	Changed bool   `json:"changed" doc:"false when the job had nothing to do (already enabled, not enabled, already current)"`
}

// MinorUpgradeJobResult is the result of project.upgrade_minor.
type MinorUpgradeJobResult struct {
	CurrentVersion         string `json:"current_version" doc:"the PostgreSQL version the cluster runs"`
	NewestInstalledVersion string `json:"newest_installed_version" doc:"the version of the installed binaries"`
	Upgraded               bool   `json:"upgraded" doc:"false: the cluster already ran the newest installed minor"`
}

// DatabaseSettings † is a project's per-tenant Postgres settings, read from
// pg_db_role_setting (the text as written).
type DatabaseSettings struct {
	Settings           map[string]string `json:"settings" doc:"settings changed from the defaults, by name, as written"`
	AllowedSettings    []string          `json:"allowed_settings" doc:"the settings a project may change"`
	ConnectionLimit    int               `json:"connection_limit" doc:"the login role's CONNECTION LIMIT"`
	MaxConnectionLimit int               `json:"max_connection_limit" doc:"the plan's connection limit, the most connection_limit may be"`
	ReadOnly           bool              `json:"read_only" doc:"read-only mode is on (see .../read-only)"`
}

// PoolerSettings † is a project's pgBouncer settings.
type PoolerSettings struct {
	PoolSize         int    `json:"pool_size" doc:"server connections per (user, database) pool; capped on each pgBouncer by its max_db_connections"`
	PoolMode         string `json:"pool_mode" doc:"transaction or session: the pooled URL's mode (the session URL is always session mode)"`
	MaxDBConnections int    `json:"max_db_connections" doc:"the connection limit minus 5, shared by the two pgBouncers"`
	DefaultPoolSize  int    `json:"default_pool_size" doc:"the pool size when pool_size was never set"`
}

// ReadOnlyStatus † is a project's read-only mode.
type ReadOnlyStatus struct {
	Enabled             bool       `json:"enabled" doc:"default_transaction_read_only is on for the project's logins"`
	OverrideActiveUntil *time.Time `json:"override_active_until,omitempty" doc:"end of the open write window; read-only comes back then"`
}

// SSLEnforcement † says whether tenant connections must use TLS.
type SSLEnforcement struct {
	Database            bool `json:"database" doc:"always true: tenants connect over hostssl only"`
	AppliedSuccessfully bool `json:"applied_successfully"`
}

// ProjectExtensionStatus is one allowlisted extension of a project (API.md §4.14).
type ProjectExtensionStatus struct {
	Name             string `json:"name"`
	Description      string `json:"description"`
	Enabled          bool   `json:"enabled" doc:"installed in the project database"`
	Trusted          bool   `json:"trusted" doc:"the project role can CREATE EXTENSION it itself"`
	Category         string `json:"category,omitempty"`
	InstalledVersion string `json:"installed_version,omitempty"`
	DefaultVersion   string `json:"default_version,omitempty"`
	AvailableVersion string `json:"available_version,omitempty" doc:"newest version the cluster has"`
	UpdateAvailable  bool   `json:"update_available,omitempty"`
	RequiresRestart  bool   `json:"requires_restart,omitempty" doc:"always false for the allowlist"`
}

// AppRoleStatus is the split app role of a project (API.md §4.15).
type AppRoleStatus struct {
	Available bool       `json:"available" doc:"true on Postgres 16 or newer"`
	Enabled   bool       `json:"enabled"`
	Username  string     `json:"username,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	RotatedAt *time.Time `json:"rotated_at,omitempty"`
}

// PITRStatus is GET /v1/projects/{projectID}/pitr † (self-hosted addition).
type PITRStatus struct {
	Enabled    bool `json:"enabled" doc:"the project's cluster archives its WAL"`
	WindowDays int  `json:"window_days" doc:"how long base backups and WAL are kept (0 when not enabled)"`
	// EarliestRestoreTime is the first restorable second for this project.
	EarliestRestoreTime *time.Time `json:"earliest_restore_time,omitempty" doc:"absent until the first base backup ends"`
	// LatestArchivedTime trails real time by at most archive_timeout (60 s);
	// a restore request first makes "now" restorable and clamps to it.
	LatestArchivedTime *time.Time      `json:"latest_archived_time,omitempty" doc:"when the last WAL segment reached the repository"`
	ArchiverHealthy    bool            `json:"archiver_healthy" doc:"no archive_command failure since the last success"`
	ArchivedCount      int64           `json:"archived_count"`
	FailedCount        int64           `json:"failed_count"`
	LastFailedWAL      string          `json:"last_failed_wal,omitempty"`
	LastFailedAt       *time.Time      `json:"last_failed_at,omitempty"`
	BaseBackups        int             `json:"base_backups"`
	LastBaseBackup     *PITRBaseBackup `json:"last_base_backup,omitempty"`
}

// PITRBaseBackup is one pgBackRest base backup of the cluster.
type PITRBaseBackup struct {
	Label     string    `json:"label"`
	Type      string    `json:"type" doc:"full, diff or incr"`
	StartedAt time.Time `json:"started_at"`
	StoppedAt time.Time `json:"stopped_at"`
	SizeBytes int64     `json:"size_bytes" doc:"the cluster's size"`
	RepoBytes int64     `json:"repo_bytes" doc:"what this backup added to the repository"`
}

// ImportFollowStatus is the result of project.import_follow_status.
type ImportFollowStatus struct {
	UnitActive string              `json:"unit_active" doc:"active while the stream runs, empty otherwise"`
	Result     string              `json:"result" doc:"failed when the stream stopped or the source cannot be read; empty otherwise"`
	LagBytes   *int64              `json:"lag_bytes" nullable:"true" doc:"WAL bytes the source holds that the project has not confirmed; null when unknown"`
	Sentinel   *FollowSentinel     `json:"sentinel,omitempty" doc:"positions used to decide when the stream has caught up"`
	Tables     []FollowTableStatus `json:"tables,omitempty" doc:"† each subscribed table and its sync state"`
}

// FollowSentinel holds the WAL positions a follow import compares.
type FollowSentinel struct {
	SourceLSN    string `json:"source_lsn" doc:"the source's current WAL position"`
	ConfirmedLSN string `json:"confirmed_lsn,omitempty" doc:"what the slot on the source has confirmed"`
	ReceivedLSN  string `json:"received_lsn,omitempty" doc:"what the project's subscription has received"`
}

// FollowTableStatus is one subscribed table († ImportFollowStatus.tables).
type FollowTableStatus struct {
	Table string `json:"table"`
	State string `json:"state" doc:"i (waiting), d (copying), f or s (finishing the copy), r (streaming)"`
}

// FollowStartJobResult is the result of project.import_follow_start.
type FollowStartJobResult struct {
	Tables      []string `json:"tables" doc:"the source tables published and subscribed"`
	Publication string   `json:"publication"`
	Slot        string   `json:"slot"`
}

// FollowCutoverJobResult is the result of project.import_follow_cutover.
type FollowCutoverJobResult struct {
	CaughtUpLSN      string   `json:"caught_up_lsn" doc:"the source position the stream reached before it was ended"`
	CatchUpMS        int64    `json:"catch_up_ms" doc:"how long the cutover waited for the stream"`
	SequencesSynced  int      `json:"sequences_synced"`
	SequencesMissing []string `json:"sequences_missing,omitempty" doc:"source sequences the project does not have"`
	Tables           int      `json:"tables"`
}

// FollowAbortJobResult is the result of project.import_follow_abort.
type FollowAbortJobResult struct {
	SlotLeft    bool   `json:"slot_left" doc:"true when the replication slot could not be removed from the source (drop it there)"`
	SourceError string `json:"source_error,omitempty"`
}

// PromoteJobResult is the result of project.promote_preview.
type PromoteJobResult struct {
	CutoverRequestID   string `json:"cutover_request_id"`
	PreviewID          string `json:"preview_id"`
	PreCutoverBackupID string `json:"pre_cutover_backup_id" doc:"the verified backup taken before the swap"`
	CopyDurationMS     int64  `json:"copy_duration_ms"`
}
