package supabase

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/typegen"
	"github.com/capydb/capydb/internal/wire"
)

// QueryInput is POST …/database/query.
type QueryInput struct {
	Ref  string `path:"ref"`
	Body struct {
		_        struct{} `additionalProperties:"true"`
		Query    string   `json:"query" minLength:"1"`
		ReadOnly bool     `json:"read_only,omitempty"`
	}
}

// TypesInput is GET …/types/typescript.
type TypesInput struct {
	Ref             string `path:"ref"`
	IncludedSchemas string `query:"included_schemas" doc:"accepted; the types cover the schemas CapyDB's generator reads"`
}

func (f *Facade) registerSQL() {
	register(f, Rule{OperationID: "v1-run-a-query", Method: http.MethodPost, Path: "/v1/projects/{ref}/database/query", Scope: auth.ScopeProjectsWrite}, 201,
		"Run SQL as the project's owner (Studio's runner: one transaction, at most 1000 rows)", func(ctx context.Context, in *QueryInput) (*struct{ Body []json.RawMessage }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			var out struct {
				Result struct {
					Columns []string          `json:"columns"`
					Rows    []json.RawMessage `json:"rows"`
				} `json:"result"`
			}
			// Supabase runs what it is sent: no guard against unqualified writes.
			body := map[string]any{"query": in.Body.Query, "max_rows": 1000}
			if in.Body.ReadOnly {
				body["read_only"] = true
			} else {
				body["allow_unqualified_writes"] = true
			}
			if err := f.call(ctx, http.MethodPost, "/v1/projects/"+sp.ProjectID+"/sql", body, &out); err != nil {
				return nil, err
			}
			rows := make([]json.RawMessage, 0, len(out.Result.Rows))
			for _, r := range out.Result.Rows {
				obj, err := rowObject(out.Result.Columns, r)
				if err != nil {
					return nil, err
				}
				rows = append(rows, obj)
			}
			return &struct{ Body []json.RawMessage }{Body: rows}, nil
		})
	register(f, Rule{OperationID: "v1-generate-typescript-types", Method: http.MethodGet, Path: "/v1/projects/{ref}/types/typescript",
		Scope: auth.ScopeSchemaRead, OrScope: auth.ScopeProjectsRead}, 200,
		"Generate TypeScript types (CapyDB's generator, style=supabase)", func(ctx context.Context, in *TypesInput) (*struct {
			Body struct {
				Types string `json:"types"`
			}
		}, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			var out struct {
				Types typegen.GeneratedTypes `json:"types"`
			}
			q := url.Values{"language": {"typescript"}, "style": {"supabase"}}
			if err := f.call(ctx, http.MethodGet, "/v1/projects/"+sp.ProjectID+"/schema/types?"+q.Encode(), nil, &out); err != nil {
				return nil, err
			}
			res := &struct {
				Body struct {
					Types string `json:"types"`
				}
			}{}
			res.Body.Types = out.Types.Content
			return res, nil
		})
}

// rowObject turns a Studio row (an array in column order, or already an
// object) into a JSON object whose keys keep the column order.
func rowObject(cols []string, row json.RawMessage) (json.RawMessage, error) {
	var vals []json.RawMessage
	if err := json.Unmarshal(row, &vals); err != nil {
		return row, nil // already an object
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		b.Write(k)
		b.WriteByte(':')
		if i < len(vals) {
			b.Write(vals[i])
		} else {
			b.WriteString("null")
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Backup is one entry of V1BackupsResponse.backups.
type Backup struct {
	IsPhysicalBackup bool   `json:"is_physical_backup"`
	Status           string `json:"status" enum:"COMPLETED,FAILED,PENDING,REMOVED,ARCHIVED,CANCELLED"`
	InsertedAt       string `json:"inserted_at"`
}

// Backups is V1BackupsResponse.
type Backups struct {
	Region             string         `json:"region"`
	WalgEnabled        bool           `json:"walg_enabled"`
	PitrEnabled        bool           `json:"pitr_enabled"`
	Backups            []Backup       `json:"backups"`
	PhysicalBackupData map[string]any `json:"physical_backup_data"`
}

func backupStatus(s string) string {
	switch s {
	case "completed":
		return "COMPLETED"
	case "failed":
		return "FAILED"
	case "expired":
		return "REMOVED"
	}
	return "PENDING"
}

// RestorePITRInput is POST …/database/backups/restore-pitr.
type RestorePITRInput struct {
	Ref  string `path:"ref"`
	Body struct {
		_                      struct{} `additionalProperties:"true"`
		RecoveryTimeTargetUnix int64    `json:"recovery_time_target_unix" minimum:"1"`
	}
}

func (f *Facade) registerBackups() {
	register(f, Rule{OperationID: "v1-restore-pitr-backup", Method: http.MethodPost, Path: "/v1/projects/{ref}/database/backups/restore-pitr",
		Scope: auth.ScopeBackupsWrite}, 201,
		"Restore the project in place to a point in time (CapyDB PITR; production projects need an approval)",
		func(ctx context.Context, in *RestorePITRInput) (*struct{ Body map[string]any }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			at := time.Unix(in.Body.RecoveryTimeTargetUnix, 0).UTC().Format(time.RFC3339)
			// The restore runs as a job (the project shows RESTORING meanwhile); Supabase answers at once.
			if err := f.call(ctx, http.MethodPost, "/v1/projects/"+sp.ProjectID+"/restores",
				map[string]any{"restore_time": at, "target_kind": "project"}, nil); err != nil {
				var e *Error
				if errors.As(err, &e) && e.status == http.StatusPreconditionRequired {
					e.Message += " (Supabase clients cannot send an approval: restore with POST /api/capydb/v1/projects/{id}/restores and an approval_token, or set the project's environment to non_production)"
				}
				return nil, err
			}
			return &struct{ Body map[string]any }{Body: map[string]any{}}, nil
		})
	register(f, Rule{OperationID: "v1-list-all-backups", Method: http.MethodGet, Path: "/v1/projects/{ref}/database/backups", Scope: auth.ScopeBackupsRead}, 200,
		"List the project's backups (CapyDB logical backups)", func(ctx context.Context, in *RefPath) (*struct{ Body Backups }, error) {
			sp, p, err := f.capyProject(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			var out struct {
				Backups []wire.Backup `json:"backups"`
			}
			if err := f.call(ctx, http.MethodGet, "/v1/projects/"+sp.ProjectID+"/backups", nil, &out); err != nil {
				return nil, err
			}
			var pitr wire.PITRStatus
			// The PITR window is reported when the caller may read it.
			_ = f.call(ctx, http.MethodGet, "/v1/projects/"+sp.ProjectID+"/pitr", nil, &pitr)
			res := Backups{Region: p.Region, PitrEnabled: pitr.Enabled, Backups: []Backup{}, PhysicalBackupData: map[string]any{}}
			if e, l := pitr.EarliestRestoreTime, pitr.LatestArchivedTime; pitr.Enabled && e != nil && l != nil {
				res.PhysicalBackupData["earliest_physical_backup_date_unix"] = e.Unix()
				res.PhysicalBackupData["latest_physical_backup_date_unix"] = l.Unix()
			}
			for _, b := range out.Backups {
				res.Backups = append(res.Backups, Backup{Status: backupStatus(b.State), InsertedAt: rfc(b.CreatedAt)})
			}
			return &struct{ Body Backups }{Body: res}, nil
		})
}
