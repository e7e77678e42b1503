package supabase

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// Branch is Supabase's BranchResponse: a project's default branch (the
// project database itself) or one of its previews.
type Branch struct {
	ID                   string  `json:"id" format:"uuid"`
	Name                 string  `json:"name"`
	ProjectRef           string  `json:"project_ref"`
	ParentProjectRef     string  `json:"parent_project_ref"`
	IsDefault            bool    `json:"is_default"`
	GitBranch            *string `json:"git_branch,omitempty"`
	Persistent           bool    `json:"persistent"`
	ResetOnPush          bool    `json:"reset_on_push"`
	WithData             bool    `json:"with_data"`
	NotifyURL            *string `json:"notify_url,omitempty"`
	Status               string  `json:"status" enum:"CREATING_PROJECT,RUNNING_MIGRATIONS,MIGRATIONS_PASSED,MIGRATIONS_FAILED,FUNCTIONS_DEPLOYED,FUNCTIONS_FAILED"`
	PreviewProjectStatus string  `json:"preview_project_status,omitempty"`
	CreatedAt            string  `json:"created_at"`
	UpdatedAt            string  `json:"updated_at"`
}

// BranchDetail is BranchDetailResponse: how to connect to a branch.
type BranchDetail struct {
	Ref             string `json:"ref"`
	PostgresVersion string `json:"postgres_version"`
	PostgresEngine  string `json:"postgres_engine"`
	ReleaseChannel  string `json:"release_channel"`
	Status          string `json:"status"`
	DBHost          string `json:"db_host"`
	DBPort          int    `json:"db_port"`
	DBUser          string `json:"db_user,omitempty"`
	DBPass          string `json:"db_pass,omitempty" doc:"only with credentials:read"`
}

func previewStatus(state string) (branch, project string) {
	switch state {
	case store.PreviewReady:
		return "MIGRATIONS_PASSED", "ACTIVE_HEALTHY"
	case store.PreviewProvisioning:
		return "CREATING_PROJECT", "COMING_UP"
	case store.PreviewResetting:
		return "RUNNING_MIGRATIONS", "RESTORING"
	case store.PreviewDeleting:
		return "MIGRATIONS_FAILED", "GOING_DOWN"
	}
	return "MIGRATIONS_FAILED", "INIT_FAILED"
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func metaString(m map[string]any, k string) *string {
	if v, ok := m[k].(string); ok {
		return &v
	}
	return nil
}

func metaBool(m map[string]any, k string) bool { v, _ := m[k].(bool); return v }

func defaultBranch(sp *store.SupabaseProject, p *wire.Project) Branch {
	st := "MIGRATIONS_PASSED"
	if p.State != store.ProjectReady {
		st = "CREATING_PROJECT"
	}
	return Branch{ID: sp.BranchID, Name: "main", ProjectRef: sp.Ref, ParentProjectRef: sp.Ref, IsDefault: true,
		Persistent: true, WithData: true, Status: st, PreviewProjectStatus: projectStatus(p.State),
		CreatedAt: rfc(p.CreatedAt), UpdatedAt: rfc(p.UpdatedAt)}
}

func toBranch(sp *store.SupabaseProject, sb *store.SupabaseBranch, pv *wire.PreviewDatabase) Branch {
	st, pst := previewStatus(pv.State)
	name := pv.Name
	if n := metaString(sb.Meta, "branch_name"); n != nil {
		name = *n
	}
	if s := metaString(sb.Meta, "status"); s != nil && pv.State == store.PreviewReady {
		st = *s // a label CI may set with PATCH
	}
	return Branch{ID: sb.BranchID, Name: name, ProjectRef: sb.Ref, ParentProjectRef: sp.Ref,
		GitBranch: metaString(sb.Meta, "git_branch"), Persistent: metaBool(sb.Meta, "persistent"),
		ResetOnPush: metaBool(sb.Meta, "reset_on_push"), WithData: pv.Mode == store.PreviewModeClone,
		NotifyURL: metaString(sb.Meta, "notify_url"), Status: st, PreviewProjectStatus: pst,
		CreatedAt: rfc(pv.CreatedAt), UpdatedAt: rfc(pv.UpdatedAt)}
}

// branchTarget is what /v1/branches/{x} names: a preview, or a project's default branch.
type branchTarget struct {
	project *store.SupabaseProject
	branch  *store.SupabaseBranch // nil: the default branch
}

// resolveBranch accepts a branch UUID, a branch ref or a CapyDB id.
func (f *Facade) resolveBranch(ctx context.Context, x string) (*branchTarget, error) {
	p := principal(ctx)
	sb, err := store.SupabaseBranchByRef(ctx, f.deps.Store.Pool, p.OrganizationID, x)
	switch {
	case err == nil:
		if p.ProjectScoped() && sb.ProjectID != p.ProjectID {
			return nil, Errorf(http.StatusNotFound, "branch %s not found", x)
		}
		sp, err := f.project(ctx, sb.ProjectID)
		if err != nil {
			return nil, err
		}
		return &branchTarget{project: sp, branch: sb}, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	sp, err := f.project(ctx, x)
	if err != nil {
		return nil, Errorf(http.StatusNotFound, "branch %s not found", x)
	}
	return &branchTarget{project: sp}, nil
}

func (f *Facade) preview(ctx context.Context, id string) (*wire.PreviewDatabase, error) {
	var out struct {
		Preview wire.PreviewDatabase `json:"preview"`
	}
	err := f.call(ctx, http.MethodGet, "/v1/preview-databases/"+url.PathEscape(id), nil, &out)
	return &out.Preview, err
}

// CreateBranchBody is CreateBranchBody (is_default = enable branching).
type CreateBranchBody struct {
	_           struct{} `additionalProperties:"true"`
	BranchName  string   `json:"branch_name" minLength:"1"`
	GitBranch   string   `json:"git_branch,omitempty"`
	Persistent  bool     `json:"persistent,omitempty"`
	Region      string   `json:"region,omitempty" doc:"must be the project's region"`
	WithData    bool     `json:"with_data,omitempty" doc:"true: a clone of the project's data; false: an empty database"`
	IsDefault   bool     `json:"is_default,omitempty" doc:"true: enable branching (returns the default branch)"`
	NotifyURL   string   `json:"notify_url,omitempty"`
	ResetOnPush bool     `json:"reset_on_push,omitempty"`
}

// UpdateBranchBody is UpdateBranchBody: facade metadata.
type UpdateBranchBody struct {
	_           struct{} `additionalProperties:"true"`
	BranchName  *string  `json:"branch_name,omitempty"`
	GitBranch   *string  `json:"git_branch,omitempty"`
	Persistent  *bool    `json:"persistent,omitempty"`
	ResetOnPush *bool    `json:"reset_on_push,omitempty"`
	NotifyURL   *string  `json:"notify_url,omitempty"`
	Status      *string  `json:"status,omitempty" enum:"CREATING_PROJECT,RUNNING_MIGRATIONS,MIGRATIONS_PASSED,MIGRATIONS_FAILED,FUNCTIONS_DEPLOYED,FUNCTIONS_FAILED"`
}

// BranchPath names a branch.
type BranchPath struct {
	ID string `path:"branch_id_or_ref" doc:"the branch UUID, its ref, or a CapyDB preview id"`
}

type messageOK struct {
	Body struct {
		Message string `json:"message"`
	}
}

func ok() *messageOK { m := &messageOK{}; m.Body.Message = "ok"; return m }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// previewName makes a CapyDB preview name of a branch name (slashes of git
// branch names become dashes; the branch name itself is kept as metadata).
func previewName(branch string) string {
	n := strings.Trim(unsafeName.ReplaceAllString(branch, "-"), "-._")
	if len(n) > 63 {
		n = n[:63]
	}
	return n
}

func (f *Facade) registerBranches() {
	get, post, del, patch := http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPatch
	register(f, Rule{OperationID: "v1-list-all-branches", Method: get, Path: "/v1/projects/{ref}/branches", Scope: auth.ScopeProjectsRead}, 200,
		"List branches: the default branch, then the project's previews", f.listBranches)
	register(f, Rule{OperationID: "v1-create-a-branch", Method: post, Path: "/v1/projects/{ref}/branches", Scope: auth.ScopeProjectsWrite}, 201,
		"Create a branch: a protected preview (with_data: clone, else empty)", f.createBranch)
	register(f, Rule{OperationID: "v1-disable-preview-branching", Method: del, Path: "/v1/projects/{ref}/branches", Scope: auth.ScopeProjectsWrite}, 200,
		"Disable branching: delete every preview of the project", func(ctx context.Context, in *RefPath) (*struct{ Body map[string]any }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			var out struct {
				Previews []wire.PreviewDatabase `json:"preview_databases"`
			}
			if err := f.call(ctx, get, "/v1/projects/"+sp.ProjectID+"/preview-databases", nil, &out); err != nil {
				return nil, err
			}
			for _, pv := range out.Previews {
				if pv.State == store.PreviewDeleting {
					continue
				}
				if err := f.call(ctx, del, "/v1/preview-databases/"+pv.ID, nil, nil); err != nil {
					return nil, err
				}
			}
			return &struct{ Body map[string]any }{Body: map[string]any{}}, nil
		})
	register(f, Rule{OperationID: "v1-get-a-branch", Method: get, Path: "/v1/projects/{ref}/branches/{name}", Scope: auth.ScopeProjectsRead}, 200,
		"Find a branch by name", func(ctx context.Context, in *struct {
			Ref  string `path:"ref"`
			Name string `path:"name"`
		}) (*struct{ Body Branch }, error) {
			list, err := f.listBranches(ctx, &RefPath{Ref: in.Ref})
			if err != nil {
				return nil, err
			}
			for _, b := range list.Body {
				if b.Name == in.Name || b.GitBranch != nil && *b.GitBranch == in.Name || b.ID == in.Name || b.ProjectRef == in.Name && !b.IsDefault {
					return &struct{ Body Branch }{Body: b}, nil
				}
			}
			return nil, Errorf(http.StatusNotFound, "branch %s not found", in.Name)
		})
	register(f, Rule{OperationID: "v1-get-a-branch-config", Method: get, Path: "/v1/branches/{branch_id_or_ref}", Scope: auth.ScopeProjectsRead}, 200,
		"Get a branch's connection details (db_pass only with credentials:read)", f.getBranch)
	register(f, Rule{OperationID: "v1-update-a-branch-config", Method: patch, Path: "/v1/branches/{branch_id_or_ref}", Scope: auth.ScopeProjectsWrite}, 200,
		"Update a branch's metadata", f.updateBranch)
	register(f, Rule{OperationID: "v1-delete-a-branch", Method: del, Path: "/v1/branches/{branch_id_or_ref}", Scope: auth.ScopeProjectsWrite}, 200,
		"Delete a branch (422 for a persistent or the default branch)", func(ctx context.Context, in *BranchPath) (*messageOK, error) {
			t, err := f.resolveBranch(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			if t.branch == nil {
				return nil, Errorf(http.StatusUnprocessableEntity, "the default branch is the project itself: delete the project instead")
			}
			if metaBool(t.branch.Meta, "persistent") {
				return nil, Errorf(http.StatusUnprocessableEntity, "branch %s is persistent: set persistent to false first", t.branch.BranchID)
			}
			if err := f.call(ctx, del, "/v1/preview-databases/"+t.branch.PreviewID, nil, nil); err != nil {
				return nil, err
			}
			return ok(), nil
		})
	register(f, Rule{OperationID: "v1-reset-a-branch", Method: post, Path: "/v1/branches/{branch_id_or_ref}/reset", Scope: auth.ScopeProjectsWrite}, 201,
		"Reset a branch: re-clone (or re-empty) the preview", func(ctx context.Context, in *BranchPath) (*messageOK, error) {
			t, err := f.resolveBranch(ctx, in.ID)
			if err != nil {
				return nil, err
			}
			if t.branch == nil {
				return nil, Errorf(http.StatusUnprocessableEntity, "the default branch cannot be reset")
			}
			var out struct {
				Job job `json:"job"`
			}
			if err := f.call(ctx, post, "/v1/preview-databases/"+t.branch.PreviewID+"/reset", map[string]any{}, &out); err != nil {
				return nil, err
			}
			if err := f.waitJob(ctx, out.Job.ID); err != nil {
				return nil, err
			}
			return ok(), nil
		})
}

func (f *Facade) listBranches(ctx context.Context, in *RefPath) (*struct{ Body []Branch }, error) {
	sp, p, err := f.capyProject(ctx, in.Ref)
	if err != nil {
		return nil, err
	}
	var out struct {
		Previews []wire.PreviewDatabase `json:"preview_databases"`
	}
	if err := f.call(ctx, http.MethodGet, "/v1/projects/"+sp.ProjectID+"/preview-databases", nil, &out); err != nil {
		return nil, err
	}
	names, err := store.SupabaseBranches(ctx, f.deps.Store.Pool, sp.ProjectID)
	if err != nil {
		return nil, err
	}
	res := &struct{ Body []Branch }{Body: []Branch{defaultBranch(sp, p)}}
	for i, pv := range out.Previews {
		if sb := names[pv.ID]; sb != nil && pv.State != store.PreviewDeleting {
			res.Body = append(res.Body, toBranch(sp, sb, &out.Previews[i]))
		}
	}
	return res, nil
}

func (f *Facade) createBranch(ctx context.Context, in *struct {
	Ref  string `path:"ref"`
	Body CreateBranchBody
}) (*struct{ Body Branch }, error) {
	sp, p, err := f.capyProject(ctx, in.Ref)
	if err != nil {
		return nil, err
	}
	if in.Body.IsDefault {
		return &struct{ Body Branch }{Body: defaultBranch(sp, p)}, nil
	}
	if in.Body.Region != "" && in.Body.Region != p.Region {
		return nil, Errorf(http.StatusBadRequest, "region %q: a branch lives in its project's region (%s)", in.Body.Region, p.Region)
	}
	name := previewName(in.Body.BranchName)
	if name == "" {
		return nil, Errorf(http.StatusBadRequest, "branch_name %q has no letter or digit", in.Body.BranchName)
	}
	mode := store.PreviewModeEmpty
	if in.Body.WithData {
		mode = store.PreviewModeClone
	}
	var out struct {
		Preview wire.PreviewDatabase `json:"preview"`
		Job     job                  `json:"job"`
	}
	if err := f.call(ctx, http.MethodPost, "/v1/projects/"+sp.ProjectID+"/preview-databases",
		map[string]any{"name": name, "mode": mode, "protected": true}, &out); err != nil {
		return nil, err
	}
	meta := map[string]any{"branch_name": in.Body.BranchName, "persistent": in.Body.Persistent, "reset_on_push": in.Body.ResetOnPush}
	if in.Body.GitBranch != "" {
		meta["git_branch"] = in.Body.GitBranch
	}
	if in.Body.NotifyURL != "" {
		meta["notify_url"] = in.Body.NotifyURL
	}
	if err := store.MergeSupabaseBranchMeta(ctx, f.deps.Store.Pool, out.Preview.ID, meta); err != nil {
		return nil, err
	}
	// Supabase's clients do not poll a new branch: answer once it is built
	// (bounded by JobWait; after that it is reported as CREATING_PROJECT).
	if err := f.waitJob(ctx, out.Job.ID); err != nil {
		var e *Error
		if !errors.As(err, &e) || e.status != http.StatusGatewayTimeout {
			return nil, err
		}
	}
	pv, err := f.preview(ctx, out.Preview.ID)
	if err != nil {
		return nil, err
	}
	sb, err := store.SupabaseBranchByRef(ctx, f.deps.Store.Pool, principal(ctx).OrganizationID, pv.ID)
	if err != nil {
		return nil, err
	}
	return &struct{ Body Branch }{Body: toBranch(sp, sb, pv)}, nil
}

func (f *Facade) getBranch(ctx context.Context, in *BranchPath) (*struct{ Body BranchDetail }, error) {
	t, err := f.resolveBranch(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	p := principal(ctx)
	var d BranchDetail
	connPath := ""
	if t.branch == nil {
		_, pr, err := f.capyProject(ctx, t.project.Ref)
		if err != nil {
			return nil, err
		}
		d = BranchDetail{Ref: t.project.Ref, PostgresVersion: pr.PostgresVersion, PostgresEngine: majorOf(pr.PostgresVersion),
			ReleaseChannel: "ga", Status: projectStatus(pr.State), DBHost: pr.PublicHost, DBPort: pr.DirectPort, DBUser: pr.RoleName}
		connPath = "/v1/projects/" + t.project.ProjectID + "/connections"
	} else {
		pv, err := f.preview(ctx, t.branch.PreviewID)
		if err != nil {
			return nil, err
		}
		_, pst := previewStatus(pv.State)
		var pr struct {
			Project wire.Project `json:"project"`
		}
		if err := f.call(ctx, http.MethodGet, "/v1/projects/"+t.project.ProjectID, nil, &pr); err != nil {
			return nil, err
		}
		d = BranchDetail{Ref: t.branch.Ref, PostgresVersion: pr.Project.PostgresVersion, PostgresEngine: majorOf(pr.Project.PostgresVersion),
			ReleaseChannel: "ga", Status: pst, DBHost: pv.PublicHost, DBPort: pv.DirectPort, DBUser: pv.RoleName}
		connPath = "/v1/preview-databases/" + pv.ID + "/connections"
	}
	if p.Has(auth.ScopeCredentialsRead) {
		var c struct {
			Connections wire.ConnectionInfo `json:"connections"`
		}
		if err := f.call(ctx, http.MethodGet, connPath, nil, &c); err == nil {
			if u, err := url.Parse(c.Connections.DirectURL); err == nil && u.User != nil {
				d.DBPass, _ = u.User.Password()
			}
		}
	}
	return &struct{ Body BranchDetail }{Body: d}, nil
}

func (f *Facade) updateBranch(ctx context.Context, in *struct {
	ID   string `path:"branch_id_or_ref"`
	Body UpdateBranchBody
}) (*struct{ Body Branch }, error) {
	t, err := f.resolveBranch(ctx, in.ID)
	if err != nil {
		return nil, err
	}
	if t.branch == nil {
		_, p, err := f.capyProject(ctx, t.project.Ref)
		if err != nil {
			return nil, err
		}
		return &struct{ Body Branch }{Body: defaultBranch(t.project, p)}, nil
	}
	meta := map[string]any{}
	b := in.Body
	for k, v := range map[string]*string{"branch_name": b.BranchName, "git_branch": b.GitBranch, "notify_url": b.NotifyURL, "status": b.Status} {
		if v != nil {
			meta[k] = *v
		}
	}
	for k, v := range map[string]*bool{"persistent": b.Persistent, "reset_on_push": b.ResetOnPush} {
		if v != nil {
			meta[k] = *v
		}
	}
	if err := store.MergeSupabaseBranchMeta(ctx, f.deps.Store.Pool, t.branch.PreviewID, meta); err != nil {
		return nil, err
	}
	pv, err := f.preview(ctx, t.branch.PreviewID)
	if err != nil {
		return nil, err
	}
	sb, err := store.SupabaseBranchByRef(ctx, f.deps.Store.Pool, principal(ctx).OrganizationID, pv.ID)
	if err != nil {
		return nil, err
	}
	return &struct{ Body Branch }{Body: toBranch(t.project, sb, pv)}, nil
}
