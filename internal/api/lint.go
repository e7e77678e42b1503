package api

import (
	"context"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/schemalint"
)

// LintReport is the wire form of a lint run.
type LintReport = schemalint.LintReport

// LintOutput is {lint}.
type LintOutput struct {
	Body struct {
		Lint *LintReport `json:"lint"`
	}
}

func (s *Server) registerLint() {
	tags := []string{"schema"}
	register(s, opSpec{AccessRule: schemaRule("lintProject", http.MethodGet, "/v1/projects/{projectID}/lint"),
		Summary: "Lint a project's schema (catalogue queries only, read-only)", Tags: tags, Errors: notReady},
		func(ctx context.Context, in *ProjectPath) (*LintOutput, error) {
			return s.lint(ctx, false, in.ProjectID)
		})
	register(s, opSpec{AccessRule: schemaRule("lintPreview", http.MethodGet, "/v1/preview-databases/{previewID}/lint"),
		Summary: "Lint a preview's schema (unused and redundant index checks are skipped)", Tags: tags, Errors: notReady},
		func(ctx context.Context, in *PreviewPath) (*LintOutput, error) {
			return s.lint(ctx, true, in.PreviewID)
		})
}

func (s *Server) lint(ctx context.Context, preview bool, id string) (*LintOutput, error) {
	t, err := s.resolveTarget(ctx, preview, id)
	if err != nil {
		return nil, err
	}
	out := &LintOutput{}
	err = s.inTenantTx(ctx, t, pgx.ReadOnly, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out.Body.Lint, err = schemalint.Lint(ctx, tx, schemalint.Options{Preview: preview})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
