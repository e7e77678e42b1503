package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/capydb/capydb/internal/typegen"
)

// GeneratedTypes is the wire form of a generated source file.
type GeneratedTypes = typegen.GeneratedTypes

// TypesQuery chooses the output (API.md §3.18).
type TypesQuery struct {
	Language string `query:"language" doc:"typescript (default), zod, drizzle, go, python"`
	Style    string `query:"style" doc:"typescript: capydb (default) or supabase; python: dataclass (default) or pydantic; not allowed otherwise"`
	Package  string `query:"package" doc:"Go package name (default db); go only"`
}

// ProjectTypesInput names a project.
type ProjectTypesInput struct {
	ProjectID string `path:"projectID"`
	TypesQuery
}

// PreviewTypesInput names a preview.
type PreviewTypesInput struct {
	PreviewID string `path:"previewID"`
	TypesQuery
}

// TypesOutput is {types}.
type TypesOutput struct {
	Body struct {
		Types *GeneratedTypes `json:"types"`
	}
}

func (s *Server) registerTypes() {
	tags := []string{"schema"}
	register(s, opSpec{AccessRule: schemaRule("generateProjectTypes", http.MethodGet, "/v1/projects/{projectID}/schema/types"),
		Summary: "Generate application types from a project's schema", Tags: tags, Errors: notReady},
		func(ctx context.Context, in *ProjectTypesInput) (*TypesOutput, error) {
			return s.generateTypes(ctx, false, in.ProjectID, in.TypesQuery)
		})
	register(s, opSpec{AccessRule: schemaRule("generatePreviewTypes", http.MethodGet, "/v1/preview-databases/{previewID}/schema/types"),
		Summary: "Generate application types from a preview's schema", Tags: tags, Errors: notReady},
		func(ctx context.Context, in *PreviewTypesInput) (*TypesOutput, error) {
			return s.generateTypes(ctx, true, in.PreviewID, in.TypesQuery)
		})
}

func (s *Server) generateTypes(ctx context.Context, preview bool, id string, q TypesQuery) (*TypesOutput, error) {
	t, err := s.resolveTarget(ctx, preview, id)
	if err != nil {
		return nil, err
	}
	opts := typegen.Options{Language: q.Language, Style: q.Style, Package: q.Package}
	// Refuse bad combinations before touching the database.
	if _, err := typegen.Normalize(opts); err != nil {
		return nil, typesError(err)
	}
	sch, err := s.readSchema(ctx, t)
	if err != nil {
		return nil, err
	}
	gen, err := typegen.Generate(sch, opts)
	if err != nil {
		return nil, typesError(err)
	}
	out := &TypesOutput{}
	out.Body.Types = gen
	return out, nil
}

func typesError(err error) error {
	var inv *typegen.InvalidError
	if errors.As(err, &inv) {
		return errorf(http.StatusBadRequest, "%s", inv.Msg)
	}
	return err
}
