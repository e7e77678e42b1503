package supabase

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// V1Database is a project's database block.
type V1Database struct {
	Host           string `json:"host"`
	Version        string `json:"version"`
	PostgresEngine string `json:"postgres_engine"`
	ReleaseChannel string `json:"release_channel"`
}

// V1Project is Supabase's V1ProjectWithDatabaseResponse (id = ref).
type V1Project struct {
	ID               string      `json:"id" doc:"the 20-letter project ref"`
	Ref              string      `json:"ref"`
	OrganizationID   string      `json:"organization_id" doc:"the organization's slug"`
	OrganizationSlug string      `json:"organization_slug"`
	Name             string      `json:"name"`
	Region           string      `json:"region"`
	CreatedAt        string      `json:"created_at"`
	Status           string      `json:"status" enum:"COMING_UP,ACTIVE_HEALTHY,ACTIVE_UNHEALTHY,RESTORING,GOING_DOWN,INIT_FAILED,UNKNOWN"`
	Database         *V1Database `json:"database,omitempty"`
}

// projectStatus maps a CapyDB project state onto Supabase's project status.
func projectStatus(state string) string {
	switch state {
	case store.ProjectReady:
		return "ACTIVE_HEALTHY"
	case store.ProjectProvisioning:
		return "COMING_UP"
	case store.ProjectRestoring, store.ProjectImporting:
		return "RESTORING"
	case store.ProjectDeleting:
		return "GOING_DOWN"
	case store.ProjectFailed:
		return "INIT_FAILED"
	}
	return "UNKNOWN"
}

func (f *Facade) org(ctx context.Context) (*store.Organization, error) {
	return store.GetOrganization(ctx, f.deps.Store.Pool, principal(ctx).OrganizationID)
}

// project resolves a path ref (or CapyDB id) of the caller's; others are 404.
func (f *Facade) project(ctx context.Context, ref string) (*store.SupabaseProject, error) {
	p := principal(ctx)
	sp, err := store.SupabaseProjectByRef(ctx, f.deps.Store.Pool, p.OrganizationID, ref)
	if errors.Is(err, store.ErrNotFound) || err == nil && p.ProjectScoped() && sp.ProjectID != p.ProjectID {
		return nil, Errorf(http.StatusNotFound, "project %s not found", ref)
	}
	return sp, err
}

// capyProject reads the CapyDB project behind a ref through /v1.
func (f *Facade) capyProject(ctx context.Context, ref string) (*store.SupabaseProject, *wire.Project, error) {
	sp, err := f.project(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Project wire.Project `json:"project"`
	}
	if err := f.call(ctx, http.MethodGet, "/v1/projects/"+sp.ProjectID, nil, &out); err != nil {
		return nil, nil, err
	}
	return sp, &out.Project, nil
}

func toV1Project(sp *store.SupabaseProject, p *wire.Project, org *store.Organization) V1Project {
	return V1Project{ID: sp.Ref, Ref: sp.Ref, OrganizationID: org.Slug, OrganizationSlug: org.Slug, Name: p.Name,
		Region: p.Region, CreatedAt: p.CreatedAt.UTC().Format(time.RFC3339), Status: projectStatus(p.State),
		Database: &V1Database{Host: p.PublicHost, Version: p.PostgresVersion, PostgresEngine: majorOf(p.PostgresVersion),
			ReleaseChannel: "ga"}}
}

func majorOf(v string) string {
	for i, c := range v {
		if c < '0' || c > '9' {
			return v[:i]
		}
	}
	return v
}

// RefPath names a project.
type RefPath struct {
	Ref string `path:"ref" doc:"the project ref (20 letters) or the CapyDB project id"`
}

// ProjectsOutput is a bare array of projects.
type ProjectsOutput struct{ Body []V1Project }

// ProjectOutput is one project.
type ProjectOutput struct{ Body V1Project }

// RegionSelection is the region the Terraform provider sends.
type RegionSelection struct {
	Type string `json:"type,omitempty"`
	Code string `json:"code"`
}

// CreateProjectBody accepts both the documented body and the one Supabase's
// generated client sends (organization_slug, region_selection).
type CreateProjectBody struct {
	_                   struct{}         `additionalProperties:"true"`
	Name                string           `json:"name" minLength:"1"`
	OrganizationID      string           `json:"organization_id,omitempty" doc:"the organization's slug or CapyDB id"`
	OrganizationSlug    string           `json:"organization_slug,omitempty"`
	Region              string           `json:"region,omitempty" doc:"a CapyDB region id"`
	RegionSelection     *RegionSelection `json:"region_selection,omitempty"`
	DBPass              string           `json:"db_pass,omitempty" doc:"not applied: CapyDB generates the owner's password (read it as db_pass of GET /v1/branches/{ref} with credentials:read)"`
	DesiredInstanceSize string           `json:"desired_instance_size,omitempty" doc:"accepted; CapyDB projects share their cluster's compute"`
}

// CreateProjectInput wraps it.
type CreateProjectInput struct{ Body CreateProjectBody }

// CreatedProject is V1ProjectResponse (201).
type CreatedProject struct {
	Body V1Project
}

// DeletedProject is V1ProjectRefResponse: id is an integer.
type DeletedProject struct {
	Body struct {
		ID   int64  `json:"id"`
		Ref  string `json:"ref"`
		Name string `json:"name"`
	}
}

// UpdateProjectInput is PATCH /v1/projects/{ref}.
type UpdateProjectInput struct {
	Ref  string `path:"ref"`
	Body struct {
		_    struct{} `additionalProperties:"true"`
		Name string   `json:"name"`
	}
}

// Organization is OrganizationResponseV1 (plus the slug).
type Organization struct {
	ID   string `json:"id" doc:"the organization's slug"`
	Slug string `json:"slug"`
	Name string `json:"name"`
}

// OrganizationDetail is V1OrganizationSlugResponse.
type OrganizationDetail struct {
	ID                     string   `json:"id"`
	Name                   string   `json:"name"`
	Plan                   string   `json:"plan"`
	OptInTags              []string `json:"opt_in_tags"`
	AllowedReleaseChannels []string `json:"allowed_release_channels"`
}

// ServiceHealth is V1ServiceHealthResponse.
type ServiceHealth struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	Status  string `json:"status" enum:"COMING_UP,ACTIVE_HEALTHY,UNHEALTHY"`
}

// HealthInput is GET …/health.
type HealthInput struct {
	Ref       string   `path:"ref"`
	Services  []string `query:"services,explode" doc:"db, db_postgres_user, pg_bouncer, pooler (others are not offered and left out)"`
	TimeoutMS int      `query:"timeout_ms"`
}

// planName maps CapyDB plans onto Supabase's.
func planName(p string) string {
	switch p {
	case "vibe":
		return "free"
	case "ship":
		return "pro"
	case "business":
		return "team"
	}
	return "enterprise"
}

func (f *Facade) registerProjects() {
	get, post, del, patch := http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPatch
	register(f, Rule{OperationID: "v1-list-all-projects", Method: get, Path: "/v1/projects", Scope: auth.ScopeProjectsRead}, 200,
		"List all projects", f.listProjects)
	register(f, Rule{OperationID: "v1-create-a-project", Method: post, Path: "/v1/projects", Scope: auth.ScopeProjectsWrite, OrgKeyOnly: true}, 201,
		"Create a project", f.createProject)
	register(f, Rule{OperationID: "v1-get-project", Method: get, Path: "/v1/projects/{ref}", Scope: auth.ScopeProjectsRead}, 200,
		"Get a project", func(ctx context.Context, in *RefPath) (*ProjectOutput, error) {
			sp, p, err := f.capyProject(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			org, err := f.org(ctx)
			if err != nil {
				return nil, err
			}
			return &ProjectOutput{Body: toV1Project(sp, p, org)}, nil
		})
	register(f, Rule{OperationID: "v1-update-a-project", Method: patch, Path: "/v1/projects/{ref}", Scope: auth.ScopeProjectsWrite}, 200,
		"Update a project (CapyDB: a project's name cannot be changed, as in /v1)", func(ctx context.Context, in *UpdateProjectInput) (*ProjectOutput, error) {
			sp, p, err := f.capyProject(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			if in.Body.Name != p.Name {
				if err := f.call(ctx, patch, "/v1/projects/"+sp.ProjectID, map[string]any{"name": in.Body.Name}, nil); err != nil {
					return nil, err
				}
			}
			org, err := f.org(ctx)
			if err != nil {
				return nil, err
			}
			return &ProjectOutput{Body: toV1Project(sp, p, org)}, nil
		})
	register(f, Rule{OperationID: "v1-delete-a-project", Method: del, Path: "/v1/projects/{ref}", Scope: auth.ScopeProjectsWrite}, 200,
		"Delete a project (CapyDB's approval rule for production projects applies: 428)", func(ctx context.Context, in *RefPath) (*DeletedProject, error) {
			sp, p, err := f.capyProject(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			if err := f.call(ctx, del, "/v1/projects/"+sp.ProjectID, nil, nil); err != nil {
				var e *Error
				if errors.As(err, &e) && e.status == http.StatusPreconditionRequired {
					e.Message += " (Supabase clients cannot send an approval: set the project's environment to non_production with PATCH /api/capydb/v1/projects/{id} first)"
				}
				return nil, err
			}
			out := &DeletedProject{}
			out.Body.ID, out.Body.Ref, out.Body.Name = sp.Number, sp.Ref, p.Name
			return out, nil
		})
	register(f, Rule{OperationID: "v1-get-services-health", Method: get, Path: "/v1/projects/{ref}/health", Scope: auth.ScopeProjectsRead}, 200,
		"Get the project's database services' health", f.health)
	register(f, Rule{OperationID: "v1-list-all-organizations", Method: get, Path: "/v1/organizations", Scope: auth.ScopeOrganizationsRead, OrScope: auth.ScopeProjectsRead}, 200,
		"List the caller's organization", func(ctx context.Context, _ *struct{}) (*struct{ Body []Organization }, error) {
			org, err := f.org(ctx)
			if err != nil {
				return nil, err
			}
			return &struct{ Body []Organization }{Body: []Organization{{ID: org.Slug, Slug: org.Slug, Name: org.Name}}}, nil
		})
	register(f, Rule{OperationID: "v1-get-an-organization", Method: get, Path: "/v1/organizations/{slug}", Scope: auth.ScopeOrganizationsRead, OrgKeyOnly: true}, 200,
		"Get the organization", func(ctx context.Context, in *struct {
			Slug string `path:"slug"`
		}) (*struct{ Body OrganizationDetail }, error) {
			org, err := f.org(ctx)
			if err != nil {
				return nil, err
			}
			if in.Slug != org.Slug && in.Slug != org.ID {
				return nil, Errorf(http.StatusNotFound, "organization %s not found", in.Slug)
			}
			return &struct{ Body OrganizationDetail }{Body: OrganizationDetail{ID: org.Slug, Name: org.Name,
				Plan: planName(org.BillingPlan), OptInTags: []string{}, AllowedReleaseChannels: []string{"ga"}}}, nil
		})
	register(f, Rule{OperationID: "v1-create-an-organization", Method: post, Path: "/v1/organizations", Scope: auth.ScopeOrganizationsWrite, OrgKeyOnly: true}, 201,
		"Create an organization (operator only in CapyDB)", func(ctx context.Context, _ *struct {
			Body map[string]any
		}) (*struct{}, error) {
			return nil, Errorf(http.StatusForbidden, "organizations are created by the CapyDB operator (or on first OIDC sign-in), not through the API")
		})
	register(f, Rule{OperationID: "v1-get-project-legacy-api-keys", Method: get, Path: "/v1/projects/{ref}/api-keys/legacy", Scope: auth.ScopeProjectsRead, NotOffered: true}, 200,
		"Legacy anon/service_role keys", f.notOffered("legacy API keys (anon, service_role)", "they are PostgREST/GoTrue client keys; CapyDB has no Data API or auth service"))
	register(f, Rule{OperationID: "v1-list-project-addons", Method: get, Path: "/v1/projects/{ref}/billing/addons", Scope: auth.ScopeProjectsRead}, 200,
		"List project add-ons (none: projects share their cluster's compute)", func(ctx context.Context, in *RefPath) (*struct {
			Body struct {
				SelectedAddons  []any `json:"selected_addons"`
				AvailableAddons []any `json:"available_addons"`
			}
		}, error) {
			if _, err := f.project(ctx, in.Ref); err != nil {
				return nil, err
			}
			out := &struct {
				Body struct {
					SelectedAddons  []any `json:"selected_addons"`
					AvailableAddons []any `json:"available_addons"`
				}
			}{}
			out.Body.SelectedAddons, out.Body.AvailableAddons = []any{}, []any{}
			return out, nil
		})
}

func (f *Facade) listProjects(ctx context.Context, _ *struct{}) (*ProjectsOutput, error) {
	var out struct {
		Projects []wire.Project `json:"projects"`
	}
	if err := f.call(ctx, http.MethodGet, "/v1/projects", nil, &out); err != nil {
		return nil, err
	}
	org, err := f.org(ctx)
	if err != nil {
		return nil, err
	}
	refs, err := store.SupabaseProjects(ctx, f.deps.Store.Pool, org.ID)
	if err != nil {
		return nil, err
	}
	res := &ProjectsOutput{Body: []V1Project{}}
	for i := range out.Projects {
		if sp := refs[out.Projects[i].ID]; sp != nil {
			res.Body = append(res.Body, toV1Project(sp, &out.Projects[i], org))
		}
	}
	return res, nil
}

func (f *Facade) createProject(ctx context.Context, in *CreateProjectInput) (*CreatedProject, error) {
	org, err := f.org(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range []string{in.Body.OrganizationID, in.Body.OrganizationSlug} {
		if o != "" && o != org.Slug && o != org.ID {
			return nil, Errorf(http.StatusNotFound, "organization %s not found", o)
		}
	}
	region := in.Body.Region
	if in.Body.RegionSelection != nil && in.Body.RegionSelection.Code != "" {
		if region != "" && region != in.Body.RegionSelection.Code {
			return nil, Errorf(http.StatusBadRequest, "region and region_selection.code disagree")
		}
		region = in.Body.RegionSelection.Code
	}
	body := map[string]any{"name": in.Body.Name}
	if region != "" {
		body["region"] = region
	}
	var out struct {
		Project wire.Project `json:"project"`
	}
	if err := f.call(ctx, http.MethodPost, "/v1/projects", body, &out); err != nil {
		return nil, err
	}
	sp, err := f.project(ctx, out.Project.ID)
	if err != nil {
		return nil, err
	}
	return &CreatedProject{Body: toV1Project(sp, &out.Project, org)}, nil
}

// health reports the database services the project has; Supabase's BaaS
// services (auth, rest, realtime, storage) are left out, which its clients
// count as healthy.
func (f *Facade) health(ctx context.Context, in *HealthInput) (*struct{ Body []ServiceHealth }, error) {
	_, p, err := f.capyProject(ctx, in.Ref)
	if err != nil {
		return nil, err
	}
	status, healthy := "UNHEALTHY", false
	switch {
	case p.State == store.ProjectReady:
		status, healthy = "ACTIVE_HEALTHY", true
	case p.State == store.ProjectProvisioning:
		status = "COMING_UP"
	}
	services := in.Services
	if len(services) == 0 {
		services = []string{"db", "db_postgres_user", "pg_bouncer", "pooler"}
	}
	out := &struct{ Body []ServiceHealth }{Body: []ServiceHealth{}}
	for _, s := range services {
		switch s {
		case "db", "db_postgres_user", "pg_bouncer", "pooler":
			out.Body = append(out.Body, ServiceHealth{Name: s, Healthy: healthy, Status: status})
		}
	}
	return out, nil
}
