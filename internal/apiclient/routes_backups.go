package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Backups, schedules, restores, restore points, exports and imports
// (API.md §3.12–3.15). Every wire type keeps the JSON it was decoded from so
// `-o json` passes the server's objects through unchanged.

// Backup is a logical dump of a project.
type Backup struct {
	ID                string     `json:"id"`
	ProjectID         string     `json:"project_id"`
	BackupKey         string     `json:"backup_key"`
	DatabaseName      string     `json:"database_name"`
	Label             string     `json:"label,omitempty"`
	State             string     `json:"state"`
	SizeBytes         int64      `json:"size_bytes"`
	VerificationState string     `json:"verification_state"`
	VerifiedAt        *time.Time `json:"verified_at,omitempty"`
	Kind              string     `json:"kind,omitempty"`
	ExpiresAt         *time.Time `json:"expires_at,omitempty"`
	JobID             string     `json:"job_id,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	raw               json.RawMessage
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
	ID            string     `json:"id"`
	CronHour      int        `json:"cron_hour"`
	CronMinute    int        `json:"cron_minute"`
	IsActive      bool       `json:"is_active"`
	Label         string     `json:"label"`
	RetentionDays int        `json:"retention_days"`
	LastJobID     string     `json:"last_job_id,omitempty"`
	LastRunAt     *time.Time `json:"last_run_at,omitempty"`
	raw           json.RawMessage
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
	ID        string    `json:"id"`
	ProjectID string    `json:"project_id"`
	State     string    `json:"state"`
	SizeBytes int64     `json:"size_bytes"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	JobID     string    `json:"job_id,omitempty"`
	raw       json.RawMessage
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
type CreateRestoreRequest struct {
	BackupKey             string `json:"backup_key,omitempty"`
	RestoreTime           string `json:"restore_time,omitempty"`
	RestorePointID        string `json:"restore_point_id,omitempty"`
	TargetKind            string `json:"target_kind"`
	PreviewID             string `json:"preview_id,omitempty"`
	PreviewName           string `json:"preview_name,omitempty"`
	TTLHours              int    `json:"ttl_hours,omitempty"`
	ApprovalToken         string `json:"approval_token,omitempty"`
	AllowUnverifiedBackup bool   `json:"allow_unverified_backup,omitempty"`
	Recreate              bool   `json:"recreate,omitempty"`
}

// PITRRestoreTarget reports the point in time a restore resolved to.
type PITRRestoreTarget struct {
	RequestedRestoreTime time.Time `json:"requested_restore_time"`
	RestoreTime          time.Time `json:"restore_time"`
	RestoreTimeClamped   bool      `json:"restore_time_clamped"`
}

// RestorePoint is a named backup or point in time.
type RestorePoint struct {
	ID        string     `json:"id"`
	Label     string     `json:"label"`
	Kind      string     `json:"kind"`
	BackupKey string     `json:"backup_key,omitempty"`
	PITRTime  *time.Time `json:"pitr_time,omitempty"`
	Note      string     `json:"note,omitempty"`
	State     string     `json:"state"`
	CreatedAt time.Time  `json:"created_at"`
	raw       json.RawMessage
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
type CreateRestorePointRequest struct {
	Label     string `json:"label"`
	Kind      string `json:"kind,omitempty"`
	BackupKey string `json:"backup_key,omitempty"`
	PITRTime  string `json:"pitr_time,omitempty"`
	Note      string `json:"note,omitempty"`
}

// CreateImportRequest is POST .../imports.
type CreateImportRequest struct {
	Confirm   bool   `json:"confirm"`
	Recreate  bool   `json:"recreate,omitempty"`
	SourceURL string `json:"source_url,omitempty"`
	UploadKey string `json:"upload_key,omitempty"`
}

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

func projectPath(projectID, rest string) string { return "/v1/projects/" + seg(projectID) + rest }

// ListBackups is GET .../backups.
func (c *Client) ListBackups(ctx context.Context, projectID string) ([]Backup, error) {
	var out struct {
		Backups []Backup `json:"backups"`
	}
	err := c.get(ctx, projectPath(projectID, "/backups"), nil, &out)
	return nonNil(out.Backups), err
}

// CreateBackup is POST .../backups; without a label no body is sent.
func (c *Client) CreateBackup(ctx context.Context, projectID, label string) (*Job, error) {
	var body any
	if label != "" {
		body = map[string]string{"label": label}
	}
	return c.postJob(ctx, projectPath(projectID, "/backups"), body)
}

// ListScheduledBackups is GET .../scheduled-backups.
func (c *Client) ListScheduledBackups(ctx context.Context, projectID string) ([]ScheduledBackup, error) {
	var out struct {
		ScheduledBackups []ScheduledBackup `json:"scheduled_backups"`
	}
	err := c.get(ctx, projectPath(projectID, "/scheduled-backups"), nil, &out)
	return nonNil(out.ScheduledBackups), err
}

// UpsertScheduledBackup is PUT .../scheduled-backups/default.
func (c *Client) UpsertScheduledBackup(ctx context.Context, projectID string, req UpsertScheduledBackupRequest) (*ScheduledBackup, error) {
	var out struct {
		ScheduledBackup *ScheduledBackup `json:"scheduled_backup"`
	}
	err := c.send(ctx, http.MethodPut, projectPath(projectID, "/scheduled-backups/default"), req, &out)
	return out.ScheduledBackup, err
}

// CreateRestore is POST .../restores; pitr is nil unless the source was a point in time.
func (c *Client) CreateRestore(ctx context.Context, projectID string, req CreateRestoreRequest) (*Job, *PITRRestoreTarget, error) {
	var out struct {
		Job  *Job               `json:"job"`
		PITR *PITRRestoreTarget `json:"pitr"`
	}
	err := c.send(ctx, http.MethodPost, projectPath(projectID, "/restores"), req, &out)
	return out.Job, out.PITR, err
}

// ListRestorePoints is GET .../restore-points.
func (c *Client) ListRestorePoints(ctx context.Context, projectID string) ([]RestorePoint, int, error) {
	var out struct {
		RestorePoints  []RestorePoint `json:"restore_points"`
		PITRWindowDays int            `json:"pitr_window_days"`
	}
	err := c.get(ctx, projectPath(projectID, "/restore-points"), nil, &out)
	return nonNil(out.RestorePoints), out.PITRWindowDays, err
}

// CreateRestorePoint is POST .../restore-points.
func (c *Client) CreateRestorePoint(ctx context.Context, projectID string, req CreateRestorePointRequest) (*RestorePoint, error) {
	var out struct {
		RestorePoint *RestorePoint `json:"restore_point"`
	}
	err := c.send(ctx, http.MethodPost, projectPath(projectID, "/restore-points"), req, &out)
	return out.RestorePoint, err
}

// DeleteRestorePoint is DELETE .../restore-points/{id}.
func (c *Client) DeleteRestorePoint(ctx context.Context, projectID, id string) error {
	return c.send(ctx, http.MethodDelete, projectPath(projectID, "/restore-points/"+seg(id)), nil, nil)
}

// CreateExport is POST .../exports (no body).
func (c *Client) CreateExport(ctx context.Context, projectID string) (string, *Job, error) {
	var out struct {
		ExportID string `json:"export_id"`
		Job      *Job   `json:"job"`
	}
	err := c.send(ctx, http.MethodPost, projectPath(projectID, "/exports"), nil, &out)
	return out.ExportID, out.Job, err
}

// ListExports is GET .../exports.
func (c *Client) ListExports(ctx context.Context, projectID string) ([]ProjectExport, error) {
	var out struct {
		Exports []ProjectExport `json:"exports"`
	}
	err := c.get(ctx, projectPath(projectID, "/exports"), nil, &out)
	return nonNil(out.Exports), err
}

// ExportDownloadURL is GET .../exports/{id}/download.
func (c *Client) ExportDownloadURL(ctx context.Context, projectID, exportID string) (*ExportDownload, error) {
	var out struct {
		Download *ExportDownload `json:"download"`
	}
	if err := c.get(ctx, projectPath(projectID, "/exports/"+seg(exportID)+"/download"), nil, &out); err != nil {
		return nil, err
	}
	if out.Download == nil || out.Download.DownloadURL == "" {
		return nil, &Error{Status: http.StatusBadGateway, Message: "the server returned no download URL"}
	}
	return out.Download, nil
}

// CreateImport is POST .../imports.
func (c *Client) CreateImport(ctx context.Context, projectID string, req CreateImportRequest) (*Job, error) {
	return c.postJob(ctx, projectPath(projectID, "/imports"), req)
}

// CreateImportUpload is POST .../imports/uploads (no body).
func (c *Client) CreateImportUpload(ctx context.Context, projectID string) (*ImportUpload, error) {
	var out struct {
		Upload *ImportUpload `json:"upload"`
	}
	if err := c.send(ctx, http.MethodPost, projectPath(projectID, "/imports/uploads"), nil, &out); err != nil {
		return nil, err
	}
	if out.Upload == nil || out.Upload.UploadURL == "" {
		return nil, &Error{Status: http.StatusBadGateway, Message: "the server returned no upload URL"}
	}
	return out.Upload, nil
}

// ImportPreflight is POST .../imports/preflight.
func (c *Client) ImportPreflight(ctx context.Context, projectID, sourceURL string) (*ImportPreflightResult, error) {
	var out struct {
		Preflight *ImportPreflightResult `json:"preflight"`
	}
	if err := c.send(ctx, http.MethodPost, projectPath(projectID, "/imports/preflight"), map[string]string{"source_url": sourceURL}, &out); err != nil {
		return nil, err
	}
	if out.Preflight == nil {
		out.Preflight = &ImportPreflightResult{}
	}
	return out.Preflight, nil
}
