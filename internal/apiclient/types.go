package apiclient

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/capydb/capydb/internal/wire"
)

// The server's objects are its own internal/wire types, embedded; the rest
// carry the fields the CLI reads. Each also remembers
// the exact JSON it was decoded from and marshals back to it, so `-o json`
// passes the server's objects through unchanged (fields this client does not
// know included).

func decodeKeep(b []byte, v any, raw *json.RawMessage) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	if !bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*raw = append(json.RawMessage(nil), b...)
	}
	return nil
}

func encodeKeep(raw json.RawMessage, v any) ([]byte, error) {
	if len(raw) > 0 {
		return raw, nil
	}
	return json.Marshal(v)
}

// Organization is an organization.
type Organization struct {
	wire.Organization
	raw json.RawMessage
}

func (o *Organization) UnmarshalJSON(b []byte) error {
	type plain Organization
	return decodeKeep(b, (*plain)(o), &o.raw)
}
func (o Organization) MarshalJSON() ([]byte, error) {
	type plain Organization
	return encodeKeep(o.raw, plain(o))
}

// Principal is the caller as the server sees it.
type Principal struct {
	AuthSource     string   `json:"auth_source"`
	OrganizationID string   `json:"organization_id,omitempty"`
	Scopes         []string `json:"scopes"`
	IsAdmin        bool     `json:"is_admin"`
	APIKeyID       string   `json:"api_key_id,omitempty"`
	ProjectID      string   `json:"project_id,omitempty"`
	raw            json.RawMessage
}

func (p *Principal) UnmarshalJSON(b []byte) error {
	type plain Principal
	return decodeKeep(b, (*plain)(p), &p.raw)
}
func (p Principal) MarshalJSON() ([]byte, error) {
	type plain Principal
	return encodeKeep(p.raw, plain(p))
}

// Viewer is GET /v1/me.
type Viewer struct {
	Organization *Organization `json:"organization"`
	Principal    Principal     `json:"principal"`
}

// Project is a project.
type Project struct {
	wire.Project
	PostgresWarning string `json:"postgres_warning,omitempty"`
	raw             json.RawMessage
}

func (p *Project) UnmarshalJSON(b []byte) error {
	type plain Project
	return decodeKeep(b, (*plain)(p), &p.raw)
}
func (p Project) MarshalJSON() ([]byte, error) {
	type plain Project
	return encodeKeep(p.raw, plain(p))
}

// ConnectionInfo holds the URLs of a project or preview.
type ConnectionInfo struct {
	wire.ConnectionInfo
	App *AppRoleConnectionInfo `json:"app,omitempty"`
	raw json.RawMessage
}

// AppRoleConnectionInfo is the split app role's URLs.
type AppRoleConnectionInfo struct {
	Username  string `json:"username"`
	DirectURL string `json:"direct_url"`
	PooledURL string `json:"pooled_url"`
}

func (c *ConnectionInfo) UnmarshalJSON(b []byte) error {
	type plain ConnectionInfo
	return decodeKeep(b, (*plain)(c), &c.raw)
}
func (c ConnectionInfo) MarshalJSON() ([]byte, error) {
	type plain ConnectionInfo
	return encodeKeep(c.raw, plain(c))
}

// Job is an asynchronous job.
type Job struct {
	wire.Job
	raw json.RawMessage
}

func (j *Job) UnmarshalJSON(b []byte) error {
	type plain Job
	return decodeKeep(b, (*plain)(j), &j.raw)
}
func (j Job) MarshalJSON() ([]byte, error) {
	type plain Job
	return encodeKeep(j.raw, plain(j))
}

// Terminal reports whether the job reached completed or failed.
func (j *Job) Terminal() bool { return j.State == "completed" || j.State == "failed" }

// PreviewDatabase is a preview database.
type PreviewDatabase struct {
	wire.PreviewDatabase
	raw json.RawMessage
}

func (p *PreviewDatabase) UnmarshalJSON(b []byte) error {
	type plain PreviewDatabase
	return decodeKeep(b, (*plain)(p), &p.raw)
}
func (p PreviewDatabase) MarshalJSON() ([]byte, error) {
	type plain PreviewDatabase
	return encodeKeep(p.raw, plain(p))
}

// APIKey is an API key (never its plaintext).
type APIKey struct {
	wire.APIKey
	raw json.RawMessage
}

func (k *APIKey) UnmarshalJSON(b []byte) error {
	type plain APIKey
	return decodeKeep(b, (*plain)(k), &k.raw)
}
func (k APIKey) MarshalJSON() ([]byte, error) {
	type plain APIKey
	return encodeKeep(k.raw, plain(k))
}

// CreateAPIKeyRequest is the body of POST .../api-keys.
type CreateAPIKeyRequest = wire.CreateAPIKeyBody

// WebhookEndpoint is a webhook receiver.
type WebhookEndpoint struct {
	wire.WebhookEndpoint
	raw json.RawMessage
}

func (w *WebhookEndpoint) UnmarshalJSON(b []byte) error {
	type plain WebhookEndpoint
	return decodeKeep(b, (*plain)(w), &w.raw)
}
func (w WebhookEndpoint) MarshalJSON() ([]byte, error) {
	type plain WebhookEndpoint
	return encodeKeep(w.raw, plain(w))
}

// CreateWebhookRequest is the body of POST .../webhook-endpoints.
type CreateWebhookRequest = wire.CreateWebhookEndpointBody

// WebhookDelivery is one delivery of an event to an endpoint.
type WebhookDelivery struct {
	wire.WebhookDelivery
	raw json.RawMessage
}

func (d *WebhookDelivery) UnmarshalJSON(b []byte) error {
	type plain WebhookDelivery
	return decodeKeep(b, (*plain)(d), &d.raw)
}
func (d WebhookDelivery) MarshalJSON() ([]byte, error) {
	type plain WebhookDelivery
	return encodeKeep(d.raw, plain(d))
}

// RegionDetail is one region.
type RegionDetail = wire.RegionDetail

// PostgresVersion is one offered major version.
type PostgresVersion = wire.PostgresVersion

// CreateProjectRequest is the body of POST /v1/projects.
type CreateProjectRequest = wire.CreateProjectBody

// CreatePreviewRequest is the body of POST .../preview-databases.
type CreatePreviewRequest = wire.CreatePreviewBody

// LoginStartRequest is the body of POST /v1/cli/login/sessions.
type LoginStartRequest = wire.CLILoginStartBody

// LoginSession is the answer of the device-login start and poll routes.
type LoginSession struct {
	SessionID        string    `json:"session_id"`
	PollToken        string    `json:"poll_token,omitempty"`
	State            string    `json:"state"`
	ExpiresAt        time.Time `json:"expires_at"`
	OrganizationID   string    `json:"organization_id,omitempty"`
	OrganizationName string    `json:"organization_name,omitempty"`
	OrganizationSlug string    `json:"organization_slug,omitempty"`
	PlaintextAPIKey  string    `json:"plaintext_api_key,omitempty"`
}

// Status is GET /status.
type Status struct {
	Service    string `json:"service"`
	Status     string `json:"status"`
	Components []struct {
		Name    string `json:"name"`
		Status  string `json:"status"`
		Message string `json:"message,omitempty"`
	} `json:"components"`
	raw json.RawMessage
}

func (s *Status) UnmarshalJSON(b []byte) error {
	type plain Status
	return decodeKeep(b, (*plain)(s), &s.raw)
}
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	return encodeKeep(s.raw, plain(s))
}

// Backups, schedules, restores, restore points, exports and imports
// (API.md §3.12–3.15). Every wire type keeps the JSON it was decoded from so
// `-o json` passes the server's objects through unchanged.

// Backup is a logical dump of a project.
type Backup struct {
	wire.Backup
	raw json.RawMessage
}

func (b *Backup) UnmarshalJSON(d []byte) error {
	type plain Backup
	return decodeKeep(d, (*plain)(b), &b.raw)
}
func (b Backup) MarshalJSON() ([]byte, error) {
	type plain Backup
	return encodeKeep(b.raw, plain(b))
}

// ScheduledBackup is a project's daily backup schedule.
type ScheduledBackup struct {
	wire.ScheduledBackup
	raw json.RawMessage
}

func (s *ScheduledBackup) UnmarshalJSON(d []byte) error {
	type plain ScheduledBackup
	return decodeKeep(d, (*plain)(s), &s.raw)
}
func (s ScheduledBackup) MarshalJSON() ([]byte, error) {
	type plain ScheduledBackup
	return encodeKeep(s.raw, plain(s))
}

// UpsertScheduledBackupRequest is a full replacement of the schedule.
type UpsertScheduledBackupRequest struct {
	CronHour      int    `json:"cron_hour"`
	CronMinute    int    `json:"cron_minute"`
	IsActive      bool   `json:"is_active"`
	Label         string `json:"label,omitempty"`
	RetentionDays int    `json:"retention_days,omitempty"`
}

// ProjectExport is a downloadable pg_dump archive.
type ProjectExport struct {
	wire.ProjectExport
	raw json.RawMessage
}

func (e *ProjectExport) UnmarshalJSON(d []byte) error {
	type plain ProjectExport
	return decodeKeep(d, (*plain)(e), &e.raw)
}
func (e ProjectExport) MarshalJSON() ([]byte, error) {
	type plain ProjectExport
	return encodeKeep(e.raw, plain(e))
}

// ExportDownload is a signed URL fetched without Authorization.
type ExportDownload struct {
	DownloadURL string    `json:"download_url"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// CreateRestoreRequest is POST .../restores.
type CreateRestoreRequest = wire.CreateRestoreRequest

// PITRRestoreTarget reports the point in time a restore resolved to.
type PITRRestoreTarget struct {
	RequestedRestoreTime time.Time `json:"requested_restore_time"`
	RestoreTime          time.Time `json:"restore_time"`
	RestoreTimeClamped   bool      `json:"restore_time_clamped"`
}

// RestorePoint is a named backup or point in time.
type RestorePoint struct {
	wire.RestorePoint
	raw json.RawMessage
}

func (r *RestorePoint) UnmarshalJSON(d []byte) error {
	type plain RestorePoint
	return decodeKeep(d, (*plain)(r), &r.raw)
}
func (r RestorePoint) MarshalJSON() ([]byte, error) {
	type plain RestorePoint
	return encodeKeep(r.raw, plain(r))
}

// CreateRestorePointRequest is POST .../restore-points.
type CreateRestorePointRequest = wire.CreateRestorePointRequest

// CreateImportRequest is POST .../imports.
type CreateImportRequest = wire.CreateImportRequest

// ImportUpload is a one-shot signed upload slot for a dump file.
type ImportUpload struct {
	ObjectKey string    `json:"object_key"`
	UploadURL string    `json:"upload_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ImportPreflightResult is what a preflight found about a source.
type ImportPreflightResult struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Detail string `json:"detail,omitempty"`
	} `json:"checks"`
	Source struct {
		ServerVersion     string `json:"server_version"`
		DatabaseSizeBytes int64  `json:"database_size_bytes"`
		Extensions        []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"extensions"`
		Provider string `json:"provider,omitempty"`
	} `json:"source"`
	StorageLimitBytes int64  `json:"storage_limit_bytes"`
	TargetVersion     string `json:"target_version"`
	raw               json.RawMessage
}

func (r *ImportPreflightResult) UnmarshalJSON(d []byte) error {
	type plain ImportPreflightResult
	return decodeKeep(d, (*plain)(r), &r.raw)
}
func (r ImportPreflightResult) MarshalJSON() ([]byte, error) {
	type plain ImportPreflightResult
	return encodeKeep(r.raw, plain(r))
}
