package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/schema"
	"github.com/capydb/capydb/internal/store"
)

// Schema tools (API.md §3.18, §3.20) read a project's or preview's
// catalogues in a session logged in as the tenant's own login, inside a
// read-only transaction (the index advisor excepted: hypopg's hypothetical
// indexes live in a transaction that is always rolled back).

// schemaToolTimeout bounds one schema-tool request's database work.
const schemaToolTimeout = 30 * time.Second

// DatabaseSchema is the wire form of a database's schema.
type DatabaseSchema = schema.DatabaseSchema

// dbTarget names the database a schema tool reads.
type dbTarget struct {
	preview   bool
	id        string
	projectID string // the project (of the preview)
	p         *store.Project
	pv        *store.Preview
}

func (t dbTarget) label() string {
	if t.preview {
		return "preview " + t.id
	}
	return "project " + t.id
}

// resolveTarget checks the caller may see the project or preview (404
// otherwise) and returns it.
func (s *Server) resolveTarget(ctx context.Context, preview bool, id string) (dbTarget, error) {
	if preview {
		pv, _, err := s.loadPreview(ctx, id)
		if err != nil {
			return dbTarget{}, err
		}
		return dbTarget{preview: true, id: pv.ID, projectID: pv.ProjectID, pv: pv}, nil
	}
	p, _, err := s.loadProject(ctx, id)
	if err != nil {
		return dbTarget{}, err
	}
	return dbTarget{id: p.ID, projectID: p.ID, p: p}, nil
}

// inTenantTx runs fn in a transaction of a session logged in as the
// target's own role; the transaction is rolled back (it never writes).
// 409 when the database is not ready. fn's ctx carries the time limit.
func (s *Server) inTenantTx(ctx context.Context, t dbTarget, mode pgx.TxAccessMode, fn func(ctx context.Context, tx pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, schemaToolTimeout)
	defer cancel()
	var conn *pgx.Conn
	var err error
	if t.preview {
		conn, err = s.deps.Lifecycle.OpenPreviewSession(ctx, t.pv, "capydb-schema-tools")
	} else {
		conn, err = s.deps.Lifecycle.OpenProjectSession(ctx, t.p, "capydb-schema-tools")
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "53300" || pgErr.Code == "57P03") {
		// too_many_connections / cannot_connect_now: the tenant's own limit
		// or a restarting server, not our fault and worth a retry.
		return errorf(http.StatusServiceUnavailable, "the database accepts no connection right now (%s); try again", pgErr.Message)
	}
	if err != nil {
		return s.fail(ctx, err, "not found")
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: mode})
	if err != nil {
		return s.fail(ctx, err, "not found")
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if err := fn(ctx, tx); err != nil {
		return s.fail(ctx, err, "not found")
	}
	return nil
}

func (s *Server) readSchema(ctx context.Context, t dbTarget) (*DatabaseSchema, error) {
	var out *DatabaseSchema
	err := s.inTenantTx(ctx, t, pgx.ReadOnly, func(ctx context.Context, tx pgx.Tx) error {
		var err error
		out, err = schema.Introspect(ctx, tx)
		return err
	})
	return out, err
}

// SchemaOutput is {schema}.
type SchemaOutput struct {
	Body struct {
		Schema *DatabaseSchema `json:"schema"`
	}
}

// SchemaDiff is the wire form of a schema comparison.
type SchemaDiff = schema.SchemaDiff

// SchemaDiffInput names the preview and what to compare it against.
type SchemaDiffInput struct {
	PreviewID      string `path:"previewID"`
	AgainstPreview string `query:"against_preview" doc:"another preview of the same project to compare against (default: the project)"`
}

// SchemaDiffOutput is {diff}.
type SchemaDiffOutput struct {
	Body struct {
		Diff *SchemaDiff `json:"diff"`
	}
}

// schemaScopes: schema tools need schema:read or projects:read.
func schemaRule(id, method, path string) AccessRule {
	return AccessRule{OperationID: id, Method: method, Path: path, Scope: auth.ScopeSchemaRead, OrScope: auth.ScopeProjectsRead}
}

func (s *Server) registerSchema() {
	tags := []string{"schema"}
	register(s, opSpec{AccessRule: schemaRule("getProjectSchema", http.MethodGet, "/v1/projects/{projectID}/schema"),
		Summary: "Describe a project database's user schemas (deterministic JSON)", Tags: tags, Errors: notReady},
		func(ctx context.Context, in *ProjectPath) (*SchemaOutput, error) {
			return s.getSchema(ctx, false, in.ProjectID)
		})
	register(s, opSpec{AccessRule: schemaRule("getPreviewSchema", http.MethodGet, "/v1/preview-databases/{previewID}/schema"),
		Summary: "Describe a preview database's user schemas (deterministic JSON)", Tags: tags, Errors: notReady},
		func(ctx context.Context, in *PreviewPath) (*SchemaOutput, error) {
			return s.getSchema(ctx, true, in.PreviewID)
		})
	register(s, opSpec{AccessRule: schemaRule("diffPreviewSchema", http.MethodGet, "/v1/preview-databases/{previewID}/schema/diff"),
		Summary: "Structural differences between a preview's schema and its project's (or another preview's)", Tags: tags, Addition: true, Errors: notReady},
		s.diffPreviewSchema)
	s.registerTypes()
	s.registerLint()
	s.registerAdvisor()
}

func (s *Server) getSchema(ctx context.Context, preview bool, id string) (*SchemaOutput, error) {
	t, err := s.resolveTarget(ctx, preview, id)
	if err != nil {
		return nil, err
	}
	sch, err := s.readSchema(ctx, t)
	if err != nil {
		return nil, err
	}
	out := &SchemaOutput{}
	out.Body.Schema = sch
	return out, nil
}

func (s *Server) diffPreviewSchema(ctx context.Context, in *SchemaDiffInput) (*SchemaDiffOutput, error) {
	target, err := s.resolveTarget(ctx, true, in.PreviewID)
	if err != nil {
		return nil, err
	}
	baseline, err := s.resolveTarget(ctx, false, target.projectID)
	if err != nil {
		return nil, err
	}
	if in.AgainstPreview != "" {
		b, err := s.resolveTarget(ctx, true, in.AgainstPreview)
		if err != nil || b.projectID != target.projectID {
			return nil, errorf(http.StatusNotFound, "against_preview: no preview %s in this preview's project", in.AgainstPreview)
		}
		baseline = b
	}
	base, err := s.readSchema(ctx, baseline)
	if err != nil {
		return nil, err
	}
	cur, err := s.readSchema(ctx, target)
	if err != nil {
		return nil, err
	}
	d := schema.Compare(base, cur)
	out := &SchemaDiffOutput{}
	out.Body.Diff = &SchemaDiff{Baseline: baseline.label(), Target: target.label(), Differences: d, InSync: len(d) == 0}
	return out, nil
}

// notReady is the extra answer of the tools that read a tenant database: 409
// while the project or preview is not ready (provisioning, restoring, resetting).
var notReady = []int{http.StatusConflict}
