package api

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/dataplane/studio"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
)

// Snippet is a saved SQL snippet † (self-hosted addition; what the
// Supabase-compatible API's /v1/snippets serves).
type Snippet struct {
	ID          string    `json:"id"`
	ProjectID   string    `json:"project_id"`
	Name        string    `json:"name"`
	Description *string   `json:"description,omitempty"`
	Query       string    `json:"query"`
	Visibility  string    `json:"visibility" enum:"user,project" doc:"user: only its author sees it; project: everyone with access to the project"`
	AuthorKind  string    `json:"author_kind" doc:"user, api_key or operator"`
	AuthorID    *string   `json:"author_id,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// CreateSnippetBody is POST /v1/projects/{projectID}/snippets.
type CreateSnippetBody struct {
	Name        string `json:"name" doc:"1-100 characters"`
	Query       string `json:"query" doc:"1-20,000 characters"`
	Description string `json:"description,omitempty" doc:"up to 1,000 characters"`
	Visibility  string `json:"visibility,omitempty" doc:"user (default) or project"`
}

// UpdateSnippetBody is PATCH …/snippets/{snippetID}; absent fields keep their value.
type UpdateSnippetBody struct {
	Name        *string `json:"name,omitempty"`
	Query       *string `json:"query,omitempty"`
	Description *string `json:"description,omitempty" doc:"\"\" clears it"`
	Visibility  *string `json:"visibility,omitempty"`
}

// CreateSnippetInput wraps the body.
type CreateSnippetInput struct {
	ProjectID string `path:"projectID"`
	Body      CreateSnippetBody
}

// SnippetPath names one snippet.
type SnippetPath struct {
	ProjectID string `path:"projectID"`
	SnippetID string `path:"snippetID"`
}

// UpdateSnippetInput wraps the body.
type UpdateSnippetInput struct {
	ProjectID string `path:"projectID"`
	SnippetID string `path:"snippetID"`
	Body      UpdateSnippetBody
}

// SnippetOutput is {snippet}.
type SnippetOutput struct {
	Body struct {
		Snippet *Snippet `json:"snippet"`
	}
}

// SnippetsOutput is {snippets}.
type SnippetsOutput struct {
	Body struct {
		Snippets []*Snippet `json:"snippets"`
	}
}

// SnippetDeletedOutput is {deleted, snippet_id}.
type SnippetDeletedOutput struct {
	Body struct {
		Deleted   bool   `json:"deleted"`
		SnippetID string `json:"snippet_id"`
	}
}

func (s *Server) registerSnippets() {
	tags := []string{"snippets"}
	base := "/v1/projects/{projectID}/snippets"
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listProjectSnippets", Method: http.MethodGet, Path: base, Scope: auth.ScopeProjectsRead},
		Addition: true, Summary: "List the project's saved SQL snippets the caller may see, by name", Tags: tags}, s.listSnippets)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createProjectSnippet", Method: http.MethodPost, Path: base, Scope: auth.ScopeProjectsWrite},
		Status: http.StatusCreated, Addition: true, Summary: "Save an SQL snippet", Tags: tags}, s.createSnippet)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getProjectSnippet", Method: http.MethodGet, Path: base + "/{snippetID}", Scope: auth.ScopeProjectsRead},
		Addition: true, Summary: "Get a saved SQL snippet", Tags: tags}, s.getSnippet)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "updateProjectSnippet", Method: http.MethodPatch, Path: base + "/{snippetID}", Scope: auth.ScopeProjectsWrite},
		Addition: true, Summary: "Change a saved SQL snippet", Tags: tags}, s.updateSnippet)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "deleteProjectSnippet", Method: http.MethodDelete, Path: base + "/{snippetID}", Scope: auth.ScopeProjectsWrite},
		Addition: true, Summary: "Delete a saved SQL snippet", Tags: tags}, s.deleteSnippet)
}

func toSnippet(sn *store.Snippet) *Snippet {
	return &Snippet{ID: sn.ID, ProjectID: sn.ProjectID, Name: sn.Name, Description: sn.Description, Query: sn.Query,
		Visibility: sn.Visibility, AuthorKind: sn.AuthorKind, AuthorID: sn.AuthorID, CreatedAt: sn.CreatedAt.UTC(), UpdatedAt: sn.UpdatedAt.UTC()}
}

func caller(ctx context.Context) (string, *string) {
	kind, id := principal(ctx).ActorKind()
	if id == "" {
		return kind, nil
	}
	return kind, &id
}

// checkSnippet validates a snippet's fields as they will be stored.
func checkSnippet(sn *store.Snippet) error {
	n := utf8.RuneCountInString(sn.Name)
	switch {
	case strings.TrimSpace(sn.Name) == "" || n > 100:
		return errorf(http.StatusBadRequest, `invalid field "name": must be 1-100 characters`)
	case lifecycle.HasInvisible(sn.Name):
		return errorf(http.StatusBadRequest, `invalid field "name": must not contain control or invisible characters`)
	case strings.TrimSpace(sn.Query) == "":
		return errorf(http.StatusBadRequest, `invalid field "query": must not be empty`)
	case utf8.RuneCountInString(sn.Query) > studio.MaxQueryChars:
		return errorf(http.StatusBadRequest, `invalid field "query": over the limit of %d characters`, studio.MaxQueryChars)
	case sn.Description != nil && utf8.RuneCountInString(*sn.Description) > 1000:
		return errorf(http.StatusBadRequest, `invalid field "description": over the limit of 1000 characters`)
	case sn.Visibility != "user" && sn.Visibility != "project":
		return errorf(http.StatusBadRequest, `invalid field "visibility": must be user or project`)
	}
	return nil
}

func (s *Server) listSnippets(ctx context.Context, in *ProjectPath) (*SnippetsOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	kind, id := caller(ctx)
	list, err := store.ListSnippets(ctx, s.deps.Store.Pool, p.ID, kind, id)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &SnippetsOutput{}
	out.Body.Snippets = make([]*Snippet, 0, len(list))
	for _, sn := range list {
		out.Body.Snippets = append(out.Body.Snippets, toSnippet(sn))
	}
	return out, nil
}

func (s *Server) createSnippet(ctx context.Context, in *CreateSnippetInput) (*SnippetOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	kind, id := caller(ctx)
	sn := &store.Snippet{ID: ids.New("snp_"), OrganizationID: p.OrganizationID, ProjectID: p.ID, Name: in.Body.Name,
		Query: in.Body.Query, Visibility: in.Body.Visibility, AuthorKind: kind, AuthorID: id}
	if sn.Visibility == "" {
		sn.Visibility = "user"
	}
	if in.Body.Description != "" {
		sn.Description = &in.Body.Description
	}
	if err := checkSnippet(sn); err != nil {
		return nil, err
	}
	if err := store.InsertSnippet(ctx, s.deps.Store.Pool, sn); err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &SnippetOutput{}
	out.Body.Snippet = toSnippet(sn)
	return out, nil
}

func (s *Server) getSnippet(ctx context.Context, in *SnippetPath) (*SnippetOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	kind, id := caller(ctx)
	sn, err := store.GetSnippet(ctx, s.deps.Store.Pool, p.ID, kind, id, in.SnippetID)
	if err != nil {
		return nil, s.fail(ctx, err, "snippet not found")
	}
	out := &SnippetOutput{}
	out.Body.Snippet = toSnippet(sn)
	return out, nil
}

func (s *Server) updateSnippet(ctx context.Context, in *UpdateSnippetInput) (*SnippetOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	kind, id := caller(ctx)
	sn, err := store.GetSnippet(ctx, s.deps.Store.Pool, p.ID, kind, id, in.SnippetID)
	if err != nil {
		return nil, s.fail(ctx, err, "snippet not found")
	}
	b := in.Body
	if b.Name != nil {
		sn.Name = *b.Name
	}
	if b.Query != nil {
		sn.Query = *b.Query
	}
	if b.Visibility != nil {
		sn.Visibility = *b.Visibility
	}
	if b.Description != nil {
		sn.Description = b.Description
		if *b.Description == "" {
			sn.Description = nil
		}
	}
	if err := checkSnippet(sn); err != nil {
		return nil, err
	}
	if err := store.UpdateSnippet(ctx, s.deps.Store.Pool, kind, id, sn); err != nil {
		return nil, s.fail(ctx, err, "snippet not found")
	}
	out := &SnippetOutput{}
	out.Body.Snippet = toSnippet(sn)
	return out, nil
}

func (s *Server) deleteSnippet(ctx context.Context, in *SnippetPath) (*SnippetDeletedOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	kind, id := caller(ctx)
	if err := store.DeleteSnippet(ctx, s.deps.Store.Pool, p.ID, kind, id, in.SnippetID); err != nil {
		return nil, s.fail(ctx, err, "snippet not found")
	}
	out := &SnippetDeletedOutput{}
	out.Body.Deleted, out.Body.SnippetID = true, in.SnippetID
	return out, nil
}
