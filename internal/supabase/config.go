package supabase

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/wire"
)

// intSettings are the Postgres settings Supabase's PostgresConfigResponse
// types as integers (the others are strings as written, e.g. "30s").
var intSettings = map[string]bool{
	"max_parallel_workers_per_gather": true, "max_parallel_workers": true, "max_parallel_maintenance_workers": true,
	"max_worker_processes": true, "max_locks_per_transaction": true, "max_wal_senders": true,
	"max_replication_slots": true,
}

func (f *Facade) jobOf(ctx context.Context, method, path string, body any) error {
	var out struct {
		Job *job `json:"job"`
	}
	if err := f.call(ctx, method, path, body, &out); err != nil {
		return err
	}
	if out.Job == nil || out.Job.ID == "" {
		return nil
	}
	return f.waitJob(ctx, out.Job.ID)
}

// PostgresConfigInput is PUT …/config/database/postgres.
type PostgresConfigInput struct {
	Ref  string         `path:"ref"`
	Body map[string]any `doc:"settings by name; max_connections is the project's connection limit; restart_database is accepted and ignored"`
}

// PoolerConfig is one SupavisorConfigResponse entry.
type PoolerConfig struct {
	Identifier          string `json:"identifier"`
	DatabaseType        string `json:"database_type" enum:"PRIMARY,READ_REPLICA"`
	IsUsingScramAuth    bool   `json:"is_using_scram_auth"`
	DBUser              string `json:"db_user"`
	DBHost              string `json:"db_host"`
	DBPort              int    `json:"db_port"`
	DBName              string `json:"db_name"`
	ConnectionString    string `json:"connection_string"`
	ConnectionStringOld string `json:"connectionString"`
	DefaultPoolSize     *int   `json:"default_pool_size"`
	MaxClientConn       *int   `json:"max_client_conn"`
	PoolMode            string `json:"pool_mode" enum:"transaction,session"`
}

// UpdatePoolerInput is PATCH …/config/database/pooler.
type UpdatePoolerInput struct {
	Ref  string `path:"ref"`
	Body struct {
		_               struct{} `additionalProperties:"true"`
		DefaultPoolSize *int     `json:"default_pool_size,omitempty" minimum:"1"`
		PoolMode        string   `json:"pool_mode,omitempty" enum:"transaction,session"`
	}
}

// PgbouncerConfig is PgbouncerConfigResponse.
type PgbouncerConfig struct {
	DefaultPoolSize         int    `json:"default_pool_size"`
	IgnoreStartupParameters string `json:"ignore_startup_parameters"`
	PoolMode                string `json:"pool_mode"`
	ConnectionString        string `json:"connection_string"`
	MaxDBConnections        int    `json:"max_db_connections" doc:"CapyDB: the connection limit minus 5"`
}

// ReadOnlyStatus is ReadOnlyStatusResponse.
type ReadOnlyStatus struct {
	Enabled             bool    `json:"enabled"`
	OverrideEnabled     bool    `json:"override_enabled"`
	OverrideActiveUntil *string `json:"override_active_until"`
}

// SSLEnforcement is SslEnforcementResponse.
type SSLEnforcement struct {
	CurrentConfig struct {
		Database bool `json:"database"`
	} `json:"currentConfig"`
	AppliedSuccessfully bool `json:"appliedSuccessfully"`
}

// SSLEnforcementInput is PUT …/ssl-enforcement.
type SSLEnforcementInput struct {
	Ref  string `path:"ref"`
	Body struct {
		RequestedConfig struct {
			Database bool `json:"database"`
		} `json:"requestedConfig"`
	}
}

func (f *Facade) pooler(ctx context.Context, ref string) (*PoolerConfig, *wire.PoolerSettings, error) {
	sp, p, err := f.capyProject(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	var out struct {
		Pooler wire.PoolerSettings `json:"pooler_settings"`
	}
	if err := f.call(ctx, http.MethodGet, "/v1/projects/"+sp.ProjectID+"/pooler-settings", nil, &out); err != nil {
		return nil, nil, err
	}
	url := fmt.Sprintf("postgresql://%s:[YOUR-PASSWORD]@%s:%d/%s?sslmode=require", p.RoleName, p.PublicHost, p.PooledPort, p.DatabaseName)
	size := out.Pooler.PoolSize
	return &PoolerConfig{Identifier: sp.Ref, DatabaseType: "PRIMARY", IsUsingScramAuth: true, DBUser: p.RoleName,
		DBHost: p.PublicHost, DBPort: p.PooledPort, DBName: p.DatabaseName, ConnectionString: url, ConnectionStringOld: url,
		DefaultPoolSize: &size, PoolMode: out.Pooler.PoolMode}, &out.Pooler, nil
}

func (f *Facade) registerConfig() {
	get, put, post, patch := http.MethodGet, http.MethodPut, http.MethodPost, http.MethodPatch
	read, write := auth.ScopeProjectsRead, auth.ScopeProjectsWrite
	register(f, Rule{OperationID: "v1-get-postgres-config", Method: get, Path: "/v1/projects/{ref}/config/database/postgres", Scope: read}, 200,
		"Get the project's Postgres settings (as written, from pg_db_role_setting)", func(ctx context.Context, in *RefPath) (*struct{ Body map[string]any }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			var out struct {
				Settings wire.DatabaseSettings `json:"database_settings"`
			}
			if err := f.call(ctx, get, "/v1/projects/"+sp.ProjectID+"/database-settings", nil, &out); err != nil {
				return nil, err
			}
			body := map[string]any{"max_connections": out.Settings.ConnectionLimit}
			for k, v := range out.Settings.Settings {
				body[k] = v
				if n, err := strconv.Atoi(v); err == nil && intSettings[k] {
					body[k] = n
				}
			}
			return &struct{ Body map[string]any }{Body: body}, nil
		})
	register(f, Rule{OperationID: "v1-update-postgres-config", Method: put, Path: "/v1/projects/{ref}/config/database/postgres", Scope: write}, 200,
		"Update Postgres settings (per project; cluster-level settings are refused naming the field)", f.putPostgresConfig)
	register(f, Rule{OperationID: "v1-get-pooler-config", Method: get, Path: "/v1/projects/{ref}/config/database/pooler", Scope: read}, 200,
		"Get the pooler (pgBouncer) configuration", func(ctx context.Context, in *RefPath) (*struct{ Body []PoolerConfig }, error) {
			pc, _, err := f.pooler(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			return &struct{ Body []PoolerConfig }{Body: []PoolerConfig{*pc}}, nil
		})
	register(f, Rule{OperationID: "v1-update-pooler-config", Method: patch, Path: "/v1/projects/{ref}/config/database/pooler", Scope: write}, 200,
		"Update the pool size and mode of the project's pgBouncer entry", func(ctx context.Context, in *UpdatePoolerInput) (*struct {
			Body struct {
				DefaultPoolSize int    `json:"default_pool_size"`
				PoolMode        string `json:"pool_mode"`
			}
		}, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			body := map[string]any{}
			if in.Body.DefaultPoolSize != nil {
				body["pool_size"] = *in.Body.DefaultPoolSize
			}
			if in.Body.PoolMode != "" {
				body["pool_mode"] = in.Body.PoolMode
			}
			if len(body) > 0 {
				if err := f.jobOf(ctx, patch, "/v1/projects/"+sp.ProjectID+"/pooler-settings", body); err != nil {
					return nil, err
				}
			}
			_, ps, err := f.pooler(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			out := &struct {
				Body struct {
					DefaultPoolSize int    `json:"default_pool_size"`
					PoolMode        string `json:"pool_mode"`
				}
			}{}
			out.Body.DefaultPoolSize, out.Body.PoolMode = ps.PoolSize, ps.PoolMode
			return out, nil
		})
	register(f, Rule{OperationID: "v1-get-project-pgbouncer-config", Method: get, Path: "/v1/projects/{ref}/config/database/pgbouncer", Scope: read}, 200,
		"Get the project's pgBouncer configuration", func(ctx context.Context, in *RefPath) (*struct{ Body PgbouncerConfig }, error) {
			pc, ps, err := f.pooler(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			return &struct{ Body PgbouncerConfig }{Body: PgbouncerConfig{DefaultPoolSize: ps.PoolSize, IgnoreStartupParameters: "extra_float_digits",
				PoolMode: ps.PoolMode, ConnectionString: pc.ConnectionString, MaxDBConnections: ps.MaxDBConnections}}, nil
		})
	register(f, Rule{OperationID: "v1-get-readonly-mode-status", Method: get, Path: "/v1/projects/{ref}/readonly", Scope: read}, 200,
		"Get read-only mode", func(ctx context.Context, in *RefPath) (*struct{ Body ReadOnlyStatus }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			var out struct {
				ReadOnly wire.ReadOnlyStatus `json:"read_only"`
			}
			if err := f.call(ctx, get, "/v1/projects/"+sp.ProjectID+"/read-only", nil, &out); err != nil {
				return nil, err
			}
			st := ReadOnlyStatus{Enabled: out.ReadOnly.Enabled}
			if t := out.ReadOnly.OverrideActiveUntil; t != nil {
				s := rfc(*t)
				st.OverrideEnabled, st.OverrideActiveUntil = true, &s
			}
			return &struct{ Body ReadOnlyStatus }{Body: st}, nil
		})
	register(f, Rule{OperationID: "v1-disable-readonly-mode-temporarily", Method: post, Path: "/v1/projects/{ref}/readonly/temporary-disable", Scope: write}, 201,
		"Allow writes for 15 minutes (read-only again afterwards)", func(ctx context.Context, in *RefPath) (*struct{ Body map[string]any }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			if err := f.jobOf(ctx, post, "/v1/projects/"+sp.ProjectID+"/read-only/write-window", nil); err != nil {
				return nil, err
			}
			return &struct{ Body map[string]any }{Body: map[string]any{}}, nil
		})
	sslOut := func(s wire.SSLEnforcement) *struct{ Body SSLEnforcement } {
		out := &struct{ Body SSLEnforcement }{}
		out.Body.CurrentConfig.Database, out.Body.AppliedSuccessfully = s.Database, s.AppliedSuccessfully
		return out
	}
	register(f, Rule{OperationID: "v1-get-ssl-enforcement-config", Method: get, Path: "/v1/projects/{ref}/ssl-enforcement", Scope: read}, 200,
		"Get SSL enforcement", func(ctx context.Context, in *RefPath) (*struct{ Body SSLEnforcement }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			var out struct {
				SSL wire.SSLEnforcement `json:"ssl_enforcement"`
			}
			if err := f.call(ctx, get, "/v1/projects/"+sp.ProjectID+"/ssl-enforcement", nil, &out); err != nil {
				return nil, err
			}
			return sslOut(out.SSL), nil
		})
	register(f, Rule{OperationID: "v1-update-ssl-enforcement-config", Method: put, Path: "/v1/projects/{ref}/ssl-enforcement", Scope: write}, 200,
		"Change SSL enforcement (off only where the operator allows plaintext)", func(ctx context.Context, in *SSLEnforcementInput) (*struct{ Body SSLEnforcement }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			var out struct {
				SSL wire.SSLEnforcement `json:"ssl_enforcement"`
				Job *job                `json:"job"`
			}
			if err := f.call(ctx, put, "/v1/projects/"+sp.ProjectID+"/ssl-enforcement",
				map[string]any{"database": in.Body.RequestedConfig.Database}, &out); err != nil {
				return nil, err
			}
			return sslOut(out.SSL), nil
		})
}

func (f *Facade) putPostgresConfig(ctx context.Context, in *PostgresConfigInput) (*struct{ Body map[string]any }, error) {
	sp, err := f.project(ctx, in.Ref)
	if err != nil {
		return nil, err
	}
	settings := map[string]string{}
	body := map[string]any{}
	echo := map[string]any{}
	for k, v := range in.Body {
		if k == "restart_database" {
			continue // settings apply to new sessions; nothing restarts
		}
		echo[k] = v
		if k == "max_connections" {
			n, ok := v.(float64)
			if !ok || n != float64(int(n)) {
				return nil, Errorf(http.StatusBadRequest, "max_connections must be an integer")
			}
			body["connection_limit"] = int(n)
			continue
		}
		switch x := v.(type) {
		case string:
			settings[k] = x
		case float64:
			settings[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			settings[k] = map[bool]string{true: "on", false: "off"}[x]
		default:
			return nil, Errorf(http.StatusBadRequest, "%s must be a string or a number", k)
		}
	}
	if len(settings) > 0 {
		body["settings"] = settings
	}
	if len(body) > 0 {
		if err := f.jobOf(ctx, http.MethodPatch, "/v1/projects/"+sp.ProjectID+"/database-settings", body); err != nil {
			return nil, err
		}
	}
	// The answer echoes every key as sent: Supabase's clients compare it
	// with their configuration verbatim.
	return &struct{ Body map[string]any }{Body: echo}, nil
}
