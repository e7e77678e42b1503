package apiclient

import (
	"context"
	"net/http"

	"github.com/capydb/capydb/internal/wire"
)

// Database settings, pooler settings, read-only mode (†) and extensions.

// DatabaseSettings is a project's per-tenant Postgres settings.
type DatabaseSettings = wire.DatabaseSettings

// PoolerSettings is a project's pgBouncer settings.
type PoolerSettings = wire.PoolerSettings

// ReadOnlyStatus is a project's read-only mode.
type ReadOnlyStatus = wire.ReadOnlyStatus

// ProjectExtensionStatus is one allowlisted extension of a project.
type ProjectExtensionStatus = wire.ProjectExtensionStatus

// GetDatabaseSettings is GET .../database-settings.
func (c *Client) GetDatabaseSettings(ctx context.Context, projectID string) (*DatabaseSettings, error) {
	var out struct {
		DatabaseSettings *DatabaseSettings `json:"database_settings"`
	}
	err := c.get(ctx, projectPath(projectID, "/database-settings"), nil, &out)
	return out.DatabaseSettings, err
}

// UpdateDatabaseSettings is PATCH .../database-settings.
func (c *Client) UpdateDatabaseSettings(ctx context.Context, projectID string, set map[string]string, reset []string, connLimit *int) (*Job, error) {
	body := map[string]any{}
	if len(set) > 0 {
		body["settings"] = set
	}
	if len(reset) > 0 {
		body["reset"] = reset
	}
	if connLimit != nil {
		body["connection_limit"] = *connLimit
	}
	var out jobEnvelope
	err := c.send(ctx, http.MethodPatch, projectPath(projectID, "/database-settings"), body, &out)
	return out.Job, err
}

// GetPoolerSettings is GET .../pooler-settings.
func (c *Client) GetPoolerSettings(ctx context.Context, projectID string) (*PoolerSettings, error) {
	var out struct {
		PoolerSettings *PoolerSettings `json:"pooler_settings"`
	}
	err := c.get(ctx, projectPath(projectID, "/pooler-settings"), nil, &out)
	return out.PoolerSettings, err
}

// UpdatePoolerSettings is PATCH .../pooler-settings (poolSize 0 and poolMode
// "" are left out).
func (c *Client) UpdatePoolerSettings(ctx context.Context, projectID string, poolSize int, poolMode string) (*Job, error) {
	body := map[string]any{}
	if poolSize != 0 {
		body["pool_size"] = poolSize
	}
	if poolMode != "" {
		body["pool_mode"] = poolMode
	}
	var out jobEnvelope
	err := c.send(ctx, http.MethodPatch, projectPath(projectID, "/pooler-settings"), body, &out)
	return out.Job, err
}

// GetReadOnly is GET .../read-only.
func (c *Client) GetReadOnly(ctx context.Context, projectID string) (*ReadOnlyStatus, error) {
	var out struct {
		ReadOnly *ReadOnlyStatus `json:"read_only"`
	}
	err := c.get(ctx, projectPath(projectID, "/read-only"), nil, &out)
	return out.ReadOnly, err
}

// SetReadOnly is PUT .../read-only.
func (c *Client) SetReadOnly(ctx context.Context, projectID string, enabled bool) (*Job, error) {
	var out jobEnvelope
	err := c.send(ctx, http.MethodPut, projectPath(projectID, "/read-only"), map[string]bool{"enabled": enabled}, &out)
	return out.Job, err
}

// OpenWriteWindow is POST .../read-only/write-window.
func (c *Client) OpenWriteWindow(ctx context.Context, projectID string) (*Job, error) {
	return c.postJob(ctx, projectPath(projectID, "/read-only/write-window"), nil)
}

// ListExtensions is GET .../extensions.
func (c *Client) ListExtensions(ctx context.Context, projectID string) ([]ProjectExtensionStatus, error) {
	var out struct {
		Extensions []ProjectExtensionStatus `json:"extensions"`
	}
	err := c.get(ctx, projectPath(projectID, "/extensions"), nil, &out)
	return nonNil(out.Extensions), err
}

// EnableExtension is POST .../extensions.
func (c *Client) EnableExtension(ctx context.Context, projectID, name string) (*Job, error) {
	return c.postJob(ctx, projectPath(projectID, "/extensions"), map[string]string{"name": name})
}

// DisableExtension is DELETE .../extensions/{name}.
func (c *Client) DisableExtension(ctx context.Context, projectID, name string) (*Job, error) {
	var out jobEnvelope
	err := c.send(ctx, http.MethodDelete, projectPath(projectID, "/extensions/"+seg(name)), nil, &out)
	return out.Job, err
}

// UpdateExtension is POST .../extensions/{name}/update.
func (c *Client) UpdateExtension(ctx context.Context, projectID, name string) (*Job, error) {
	return c.postJob(ctx, projectPath(projectID, "/extensions/"+seg(name)+"/update"), nil)
}
