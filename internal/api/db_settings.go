package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// Database settings, pooler settings, read-only mode and SSL enforcement:
// self-hosted additions (†, docs/api.md, docs/database-settings.md).

// UpdateDatabaseSettingsRequest is PATCH …/database-settings.
type UpdateDatabaseSettingsRequest struct {
	Settings        map[string]string `json:"settings,omitempty" doc:"settings to change, by name; values as in postgresql.conf (e.g. \"64MB\", \"30s\")"`
	Reset           []string          `json:"reset,omitempty" doc:"settings to return to the default"`
	ConnectionLimit *int              `json:"connection_limit,omitempty" doc:"7 up to the plan's connection limit"`
}

// UpdateDatabaseSettingsInput wraps it.
type UpdateDatabaseSettingsInput struct {
	ProjectID string `path:"projectID"`
	Body      UpdateDatabaseSettingsRequest
}

// DatabaseSettingsOutput is GET …/database-settings.
type DatabaseSettingsOutput struct {
	Body struct {
		DatabaseSettings wire.DatabaseSettings `json:"database_settings"`
	}
}

// UpdatePoolerSettingsRequest is PATCH …/pooler-settings.
type UpdatePoolerSettingsRequest struct {
	PoolSize *int   `json:"pool_size,omitempty" doc:"1 up to max_db_connections"`
	PoolMode string `json:"pool_mode,omitempty" doc:"transaction or session"`
}

// UpdatePoolerSettingsInput wraps it.
type UpdatePoolerSettingsInput struct {
	ProjectID string `path:"projectID"`
	Body      UpdatePoolerSettingsRequest
}

// PoolerSettingsOutput is GET …/pooler-settings.
type PoolerSettingsOutput struct {
	Body struct {
		PoolerSettings wire.PoolerSettings `json:"pooler_settings"`
	}
}

// SetReadOnlyRequest is PUT …/read-only.
type SetReadOnlyRequest struct {
	Enabled *bool `json:"enabled" required:"true" nullable:"false"`
}

// SetReadOnlyInput wraps it.
type SetReadOnlyInput struct {
	ProjectID string `path:"projectID"`
	Body      SetReadOnlyRequest
}

// ReadOnlyOutput is GET …/read-only.
type ReadOnlyOutput struct {
	Body struct {
		ReadOnly wire.ReadOnlyStatus `json:"read_only"`
	}
}

// SSLEnforcementRequest is PUT …/ssl-enforcement.
type SSLEnforcementRequest struct {
	Database *bool `json:"database" required:"true" nullable:"false"`
}

// SSLEnforcementInput wraps it.
type SSLEnforcementInput struct {
	ProjectID string `path:"projectID"`
	Body      SSLEnforcementRequest
}

// SSLEnforcementOutput is GET and PUT …/ssl-enforcement.
type SSLEnforcementOutput struct {
	Body struct {
		SSLEnforcement wire.SSLEnforcement `json:"ssl_enforcement"`
	}
}

func (s *Server) registerDatabaseSettings() {
	tags := []string{"database"}
	p := "/v1/projects/{projectID}"
	notReady := []int{http.StatusConflict}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getDatabaseSettings", Method: http.MethodGet,
		Path: p + "/database-settings", Scope: auth.ScopeProjectsRead}, Errors: notReady,
		Summary: "Read the project's Postgres settings", Description: "†", Tags: tags}, s.getDatabaseSettings)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "updateDatabaseSettings", Method: http.MethodPatch,
		Path: p + "/database-settings", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Change the project's Postgres settings (job project.settings_update)", Description: "†", Tags: tags}, s.updateDatabaseSettings)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getPoolerSettings", Method: http.MethodGet,
		Path: p + "/pooler-settings", Scope: auth.ScopeProjectsRead}, Errors: notReady,
		Summary: "Read the project's pgBouncer settings", Description: "†", Tags: tags}, s.getPoolerSettings)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "updatePoolerSettings", Method: http.MethodPatch,
		Path: p + "/pooler-settings", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Change the project's pgBouncer settings (job project.pooler_update)", Description: "†", Tags: tags}, s.updatePoolerSettings)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getReadOnly", Method: http.MethodGet,
		Path: p + "/read-only", Scope: auth.ScopeProjectsRead}, Errors: notReady,
		Summary: "Read the project's read-only mode", Description: "†", Tags: tags}, s.getReadOnly)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "setReadOnly", Method: http.MethodPut,
		Path: p + "/read-only", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Switch read-only mode on or off (job instance.set_readonly)", Description: "†", Tags: tags}, s.setReadOnly)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "openWriteWindow", Method: http.MethodPost,
		Path: p + "/read-only/write-window", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Allow writes for 15 minutes, then read-only again (jobs instance.set_readonly)", Description: "†", Tags: tags}, s.openWriteWindow)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getSslEnforcement", Method: http.MethodGet,
		Path: p + "/ssl-enforcement", Scope: auth.ScopeProjectsRead},
		Summary: "Read whether tenant connections must use TLS (true unless the operator allowed plaintext and the project turned it off)", Description: "†", Tags: tags}, s.getSSLEnforcement)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "putSslEnforcement", Method: http.MethodPut,
		Path: p + "/ssl-enforcement", Scope: auth.ScopeProjectsWrite},
		Summary: "Turn TLS enforcement off (only with the operator's --allow-plaintext; refused otherwise) or back on; queues project.apply_network", Description: "†", Tags: tags, Errors: notReady}, s.putSSLEnforcement)
}

func (s *Server) getDatabaseSettings(ctx context.Context, in *ProjectPath) (*DatabaseSettingsOutput, error) {
	p, err := s.readyProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	st, err := s.deps.Lifecycle.GetDatabaseSettings(ctx, p)
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &DatabaseSettingsOutput{}
	out.Body.DatabaseSettings = wire.DatabaseSettings{Settings: st.Settings, AllowedSettings: dataplane.TenantSettings,
		ConnectionLimit: st.ConnectionLimit, MaxConnectionLimit: st.MaxConnectionLimit, ReadOnly: st.ReadOnly}
	return out, nil
}

func (s *Server) updateDatabaseSettings(ctx context.Context, in *UpdateDatabaseSettingsInput) (*JobOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.UpdateDatabaseSettings(ctx, p, in.Body.Settings, in.Body.Reset, in.Body.ConnectionLimit, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) getPoolerSettings(ctx context.Context, in *ProjectPath) (*PoolerSettingsOutput, error) {
	p, err := s.readyProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	ps, err := s.deps.Lifecycle.GetPoolerSettings(ctx, p)
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &PoolerSettingsOutput{}
	out.Body.PoolerSettings = wire.PoolerSettings{PoolSize: ps.PoolSize, PoolMode: ps.PoolMode,
		MaxDBConnections: ps.MaxDBConnections, DefaultPoolSize: ps.DefaultPoolSize}
	return out, nil
}

func (s *Server) updatePoolerSettings(ctx context.Context, in *UpdatePoolerSettingsInput) (*JobOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.UpdatePoolerSettings(ctx, p, in.Body.PoolSize, in.Body.PoolMode, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) getReadOnly(ctx context.Context, in *ProjectPath) (*ReadOnlyOutput, error) {
	p, err := s.readyProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	st, err := s.deps.Lifecycle.GetReadOnly(ctx, p)
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &ReadOnlyOutput{}
	out.Body.ReadOnly = wire.ReadOnlyStatus{Enabled: st.Enabled, OverrideActiveUntil: st.OverrideActiveUntil}
	return out, nil
}

func (s *Server) setReadOnly(ctx context.Context, in *SetReadOnlyInput) (*JobOutput, error) {
	return s.readOnlyJob(ctx, in.ProjectID, *in.Body.Enabled, false)
}

func (s *Server) openWriteWindow(ctx context.Context, in *ProjectPath) (*JobOutput, error) {
	return s.readOnlyJob(ctx, in.ProjectID, false, true)
}

func (s *Server) readOnlyJob(ctx context.Context, projectID string, enabled, window bool) (*JobOutput, error) {
	p, _, err := s.loadProject(ctx, projectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.SetReadOnly(ctx, p, enabled, window, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

// sslEnforcement reports a project's TLS rule: enforced unless the operator
// allowed plaintext (--allow-plaintext) and the project asked for it;
// applied_successfully is false while the HBA apply job is pending.
func (s *Server) sslEnforcement(ctx context.Context, projectID string) (*SSLEnforcementOutput, error) {
	out := &SSLEnforcementOutput{}
	out.Body.SSLEnforcement = wire.SSLEnforcement{Database: true, AppliedSuccessfully: true}
	n, err := store.GetProjectNetwork(ctx, s.deps.Store.Pool, projectID)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out.Body.SSLEnforcement = wire.SSLEnforcement{Database: !n.Plaintext, AppliedSuccessfully: n.Status == store.NetworkApplied}
	return out, nil
}

func (s *Server) getSSLEnforcement(ctx context.Context, in *ProjectPath) (*SSLEnforcementOutput, error) {
	if _, _, err := s.loadProject(ctx, in.ProjectID); err != nil {
		return nil, err
	}
	return s.sslEnforcement(ctx, in.ProjectID)
}

// putSSLEnforcement turns TLS enforcement off only where the operator
// allowed plaintext: both HBA files then get host (not hostssl) lines for
// the project (docs/network.md). Otherwise false is refused.
func (s *Server) putSSLEnforcement(ctx context.Context, in *SSLEnforcementInput) (*SSLEnforcementOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	plaintext := !*in.Body.Database
	if plaintext && !s.deps.Lifecycle.PlaintextAllowed(p.ClusterID) {
		return nil, errorf(http.StatusBadRequest, "not allowed to configure SSL enforcements: this server accepts tenant connections over TLS only (hostssl); the operator can allow plaintext with capydb server --allow-plaintext")
	}
	cur, err := s.sslEnforcement(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if cur.Body.SSLEnforcement.Database == !plaintext {
		return cur, nil // already so: nothing to apply
	}
	if _, err := s.deps.Lifecycle.SetProjectPlaintext(ctx, p.OrganizationID, p.ID, plaintext, actor(ctx)); err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	return s.sslEnforcement(ctx, p.ID)
}
