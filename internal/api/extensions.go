package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/wire"
)

// Extensions (API.md §3.20), the minor upgrade (§3.21) and the app role (§3.22).

// extensionCategories are PRODUCT.md §18's categories.
var extensionCategories = map[string]string{
	"pg_stat_statements": "performance", "pgcrypto": "security", "uuid-ossp": "core", "citext": "core",
	"hstore": "core", "pg_trgm": "search", "vector": "ai", "postgis": "geospatial", "unaccent": "search",
	"ltree": "core", "fuzzystrmatch": "search", "btree_gin": "performance", "btree_gist": "performance",
}

// EnableExtensionRequest is POST …/extensions.
type EnableExtensionRequest struct {
	Name string `json:"name" maxLength:"63"`
}

// EnableExtensionInput wraps it.
type EnableExtensionInput struct {
	ProjectID string `path:"projectID"`
	Body      EnableExtensionRequest
}

// ExtensionPath names an extension of a project.
type ExtensionPath struct {
	ProjectID string `path:"projectID"`
	Name      string `path:"name" maxLength:"63"`
}

// ExtensionsOutput is GET …/extensions.
type ExtensionsOutput struct {
	Body struct {
		Extensions []wire.ProjectExtensionStatus `json:"extensions"`
	}
}

// AppRoleOutput is GET …/roles/app.
type AppRoleOutput struct {
	Body struct {
		AppRole wire.AppRoleStatus `json:"app_role"`
	}
}

func (s *Server) registerExtensions() {
	tags := []string{"database"}
	p := "/v1/projects/{projectID}"
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listProjectExtensions", Method: http.MethodGet,
		Path: p + "/extensions", Scope: auth.ScopeProjectsRead}, Errors: []int{http.StatusConflict},
		Summary: "List the allowlisted extensions the cluster provides and whether each is enabled", Tags: tags}, s.listExtensions)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "enableProjectExtension", Method: http.MethodPost,
		Path: p + "/extensions", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Enable an extension (job project.extension_enable)", Tags: tags}, s.enableExtension)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "disableProjectExtension", Method: http.MethodDelete,
		Path: p + "/extensions/{name}", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Disable an extension, without CASCADE (job project.extension_disable)", Tags: tags},
		func(ctx context.Context, in *ExtensionPath) (*JobOutput, error) {
			return s.extensionJob(ctx, in.ProjectID, in.Name, dataplane.ExtensionDisable)
		})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "updateProjectExtension", Method: http.MethodPost,
		Path: p + "/extensions/{name}/update", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Update an extension to the cluster's default version (job project.extension_update)", Tags: tags},
		func(ctx context.Context, in *ExtensionPath) (*JobOutput, error) {
			return s.extensionJob(ctx, in.ProjectID, in.Name, dataplane.ExtensionUpdate)
		})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "upgradeProjectMinor", Method: http.MethodPost,
		Path: p + "/upgrade/minor", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Bring the project to the newest installed minor release (job project.upgrade_minor)", Tags: tags}, s.upgradeMinor)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getAppRole", Method: http.MethodGet,
		Path: p + "/roles/app", Scope: auth.ScopeProjectsRead},
		Summary: "Read the split app role's status", Tags: tags}, s.getAppRole)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "enableAppRole", Method: http.MethodPost,
		Path: p + "/roles/app", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Enable the split app role (Postgres 16 or newer)", Tags: tags},
		func(ctx context.Context, in *ProjectPath) (*JobOutput, error) {
			return nil, s.appRoleUnavailable(ctx, in.ProjectID, "the app role is not offered for this project")
		})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "rotateAppRole", Method: http.MethodPost,
		Path: p + "/roles/app/rotate", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Rotate the app role's password", Tags: tags},
		func(ctx context.Context, in *ProjectPath) (*JobOutput, error) {
			return nil, s.appRoleUnavailable(ctx, in.ProjectID, "the app role is not enabled for this project")
		})
}

func (s *Server) listExtensions(ctx context.Context, in *ProjectPath) (*ExtensionsOutput, error) {
	p, err := s.readyProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	exts, err := s.deps.Lifecycle.ExtensionsOf(ctx, p)
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &ExtensionsOutput{}
	out.Body.Extensions = []wire.ProjectExtensionStatus{}
	for _, e := range exts {
		out.Body.Extensions = append(out.Body.Extensions, wire.ProjectExtensionStatus{
			Name: e.Name, Description: e.Description, Enabled: e.InstalledVersion != "", Trusted: e.Trusted,
			Category: extensionCategories[e.Name], InstalledVersion: e.InstalledVersion, DefaultVersion: e.DefaultVersion,
			AvailableVersion: e.AvailableVersion,
			UpdateAvailable:  e.InstalledVersion != "" && e.InstalledVersion != e.AvailableVersion,
		})
	}
	return out, nil
}

func (s *Server) enableExtension(ctx context.Context, in *EnableExtensionInput) (*JobOutput, error) {
	return s.extensionJob(ctx, in.ProjectID, in.Body.Name, dataplane.ExtensionEnable)
}

func (s *Server) extensionJob(ctx context.Context, projectID, name, op string) (*JobOutput, error) {
	p, _, err := s.loadProject(ctx, projectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.ChangeExtension(ctx, p, name, op, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

func (s *Server) upgradeMinor(ctx context.Context, in *ProjectPath) (*JobOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.UpgradeMinor(ctx, p, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}

// appRoleAvailable: the role model needs Postgres 16's role-membership options.
func appRoleAvailable(postgresVersion string) bool {
	major, _, _ := strings.Cut(postgresVersion, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n >= 16
}

func (s *Server) getAppRole(ctx context.Context, in *ProjectPath) (*AppRoleOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	out := &AppRoleOutput{}
	out.Body.AppRole = wire.AppRoleStatus{Available: appRoleAvailable(p.PostgresVersion)}
	return out, nil
}

// appRoleUnavailable answers the enable and rotate routes. Every cluster this
// server runs is Postgres 15, where the role is not offered (404, API.md
// §3.22); on 16+ the jobs are not built yet, which is said plainly (409).
func (s *Server) appRoleUnavailable(ctx context.Context, projectID, msg string) error {
	p, _, err := s.loadProject(ctx, projectID)
	if err != nil {
		return err
	}
	if !appRoleAvailable(p.PostgresVersion) {
		return errorf(http.StatusNotFound, "%s", msg)
	}
	return errorf(http.StatusConflict, "the app role jobs are not available on this server yet")
}
