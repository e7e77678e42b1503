package apiclient

import (
	"context"
	"net/http"

	"github.com/capydb/capydb/internal/wire"
)

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
		return nil, &Error{Status: http.StatusBadGateway, Message: "the server returned no download URL", Server: c.BaseURL}
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
		return nil, &Error{Status: http.StatusBadGateway, Message: "the server returned no upload URL", Server: c.BaseURL}
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

// PITRStatus is GET .../pitr †: the project's point-in-time window.
type PITRStatus = wire.PITRStatus

// GetPITR is GET /v1/projects/{id}/pitr †.
func (c *Client) GetPITR(ctx context.Context, projectID string) (*PITRStatus, error) {
	var out PITRStatus
	if err := c.get(ctx, projectPath(projectID, "/pitr"), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartImportFollow is POST .../imports/follow.
func (c *Client) StartImportFollow(ctx context.Context, projectID, sourceURL string) (*Job, error) {
	return c.postJob(ctx, projectPath(projectID, "/imports/follow"), map[string]any{"confirm": true, "source_url": sourceURL})
}

// ImportFollowStatus is POST .../imports/follow/status (no body).
func (c *Client) ImportFollowStatus(ctx context.Context, projectID string) (*Job, error) {
	return c.postJob(ctx, projectPath(projectID, "/imports/follow/status"), nil)
}

// CutoverImportFollow is POST .../imports/follow/cutover.
func (c *Client) CutoverImportFollow(ctx context.Context, projectID string) (*Job, error) {
	return c.postJob(ctx, projectPath(projectID, "/imports/follow/cutover"), map[string]any{"confirm": true})
}

// AbortImportFollow is POST .../imports/follow/abort (no body).
func (c *Client) AbortImportFollow(ctx context.Context, projectID string) (*Job, error) {
	return c.postJob(ctx, projectPath(projectID, "/imports/follow/abort"), nil)
}
