package apiclient

import (
	"context"
	"net/url"
	"strconv"

	"github.com/capydb/capydb/internal/advisor"
	dbschema "github.com/capydb/capydb/internal/schema"
	"github.com/capydb/capydb/internal/schemalint"
	"github.com/capydb/capydb/internal/typegen"
)

// The schema tools' answers are the server's own types.
type (
	DatabaseSchema     = dbschema.DatabaseSchema
	SchemaDiff         = dbschema.SchemaDiff
	SchemaDifference   = dbschema.SchemaDifference
	GeneratedTypes     = typegen.GeneratedTypes
	LintReport         = schemalint.LintReport
	IndexAdvisorReport = advisor.IndexAdvisorReport
	IndexHygieneReport = advisor.IndexHygieneReport
)

// Target names the database a schema tool reads: a project, or a preview
// when PreviewID is set.
type Target struct {
	ProjectID, PreviewID string
}

func (t Target) base() string {
	if t.PreviewID != "" {
		return "/v1/preview-databases/" + seg(t.PreviewID)
	}
	return "/v1/projects/" + seg(t.ProjectID)
}

// Schema is GET .../schema.
func (c *Client) Schema(ctx context.Context, t Target) (*DatabaseSchema, error) {
	var out struct {
		Schema *DatabaseSchema `json:"schema"`
	}
	if err := c.get(ctx, t.base()+"/schema", nil, &out); err != nil {
		return nil, err
	}
	if out.Schema == nil {
		out.Schema = &DatabaseSchema{}
	}
	return out.Schema, nil
}

// PreviewSchemaDiff is GET /v1/preview-databases/{id}/schema/diff †,
// against the preview's project or, when againstPreview is set, another
// preview of it.
func (c *Client) PreviewSchemaDiff(ctx context.Context, previewID, againstPreview string) (*SchemaDiff, error) {
	var q url.Values
	if againstPreview != "" {
		q = url.Values{"against_preview": {againstPreview}}
	}
	var out struct {
		Diff *SchemaDiff `json:"diff"`
	}
	if err := c.get(ctx, "/v1/preview-databases/"+seg(previewID)+"/schema/diff", q, &out); err != nil {
		return nil, err
	}
	if out.Diff == nil {
		out.Diff = &SchemaDiff{}
	}
	return out.Diff, nil
}

// GenerateTypes is GET .../schema/types; each parameter is sent only when
// non-empty.
func (c *Client) GenerateTypes(ctx context.Context, t Target, language, style, pkg string) (*GeneratedTypes, error) {
	q := url.Values{}
	for k, v := range map[string]string{"language": language, "style": style, "package": pkg} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var out struct {
		Types *GeneratedTypes `json:"types"`
	}
	if err := c.get(ctx, t.base()+"/schema/types", q, &out); err != nil {
		return nil, err
	}
	if out.Types == nil {
		out.Types = &GeneratedTypes{}
	}
	return out.Types, nil
}

// Lint is GET .../lint.
func (c *Client) Lint(ctx context.Context, t Target) (*LintReport, error) {
	var out struct {
		Lint *LintReport `json:"lint"`
	}
	if err := c.get(ctx, t.base()+"/lint", nil, &out); err != nil {
		return nil, err
	}
	if out.Lint == nil {
		out.Lint = &LintReport{}
	}
	return out.Lint, nil
}

// IndexAdvisor is GET /v1/projects/{id}/advisor/indexes; thresholds are
// sent only when positive.
func (c *Client) IndexAdvisor(ctx context.Context, projectID string, minFilter, minSelectivity int) (*IndexAdvisorReport, error) {
	q := url.Values{}
	if minFilter > 0 {
		q.Set("min_filter", strconv.Itoa(minFilter))
	}
	if minSelectivity > 0 {
		q.Set("min_selectivity", strconv.Itoa(minSelectivity))
	}
	var out struct {
		Advisor *IndexAdvisorReport `json:"advisor"`
	}
	if err := c.get(ctx, "/v1/projects/"+seg(projectID)+"/advisor/indexes", q, &out); err != nil {
		return nil, err
	}
	if out.Advisor == nil {
		out.Advisor = &IndexAdvisorReport{}
	}
	return out.Advisor, nil
}

// IndexHygiene is GET /v1/projects/{id}/advisor/index-hygiene.
func (c *Client) IndexHygiene(ctx context.Context, projectID string) (*IndexHygieneReport, error) {
	var out struct {
		Hygiene *IndexHygieneReport `json:"hygiene"`
	}
	if err := c.get(ctx, "/v1/projects/"+seg(projectID)+"/advisor/index-hygiene", nil, &out); err != nil {
		return nil, err
	}
	if out.Hygiene == nil {
		out.Hygiene = &IndexHygieneReport{}
	}
	return out.Hygiene, nil
}
