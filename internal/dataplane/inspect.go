package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrInvalidSourceURL: the import source is not a connection URL pgx accepts.
var ErrInvalidSourceURL = errors.New("source_url is not a valid connection URL")

// UnreachableError: the source could not be connected to; Err says why
// (it may quote the URL, so callers scrub it before showing it).
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// SourceConfig says how to reach an import source. Dial and Lookup let the
// caller's outbound address rules apply at connect time.
type SourceConfig struct {
	URL    string
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Lookup func(ctx context.Context, host string) ([]string, error)
}

// SourceExtension is an installed extension of a source.
type SourceExtension struct {
	Name    string
	Version string
}

// SourceFacts is what InspectSource read from a source's catalog.
type SourceFacts struct {
	ServerVersion        string
	Major                int
	DatabaseSizeBytes    int64
	Extensions           []SourceExtension
	AppSchemas           []string
	EventTriggers        []string
	WALLevel             string
	MaxReplicationSlots  int
	MaxWALSenders        int
	UsedReplicationSlots int
	UsedWALSenders       int
	// RoleCanReplicate: the login has REPLICATION (or is a superuser), which
	// a subscription's walsender connection needs.
	RoleCanReplicate bool
	// NoReplicaIdentity lists tables that logical replication cannot carry
	// UPDATE/DELETE for (no primary key and no replica identity); publishing
	// them would make those statements fail on the source.
	NoReplicaIdentity []string
	// ApplyTriggers lists triggers enabled ALWAYS or REPLICA: they would fire
	// while the subscription (a superuser on Postgres 15) applies changes.
	ApplyTriggers []string
}

// noIdentitySQL and applyTriggersSQL: user tables without a usable replica identity, and
// triggers that fire during apply; extension-owned tables are left out.
const noIdentitySQL = `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'r' AND n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\_%'
	  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
	  AND (c.relreplident = 'n' OR (c.relreplident = 'd'
	       AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
	ORDER BY 1 LIMIT 50`

const applyTriggersSQL = `SELECT format('%I.%I: %I (%s)', n.nspname, c.relname, t.tgname,
	    CASE t.tgenabled WHEN 'A' THEN 'ENABLE ALWAYS' ELSE 'ENABLE REPLICA' END)
	FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE NOT t.tgisinternal AND t.tgenabled IN ('A', 'R') ORDER BY 1 LIMIT 50`

// InspectSource connects to an import source (10 s to connect, 15 s in all)
// and reads its version, size, extensions, schemas, event triggers and
// replication settings. It writes nothing. The source is the user's server,
// not a managed cluster, so it runs with the user's credentials only.
func InspectSource(ctx context.Context, sc SourceConfig) (*SourceFacts, error) {
	cfg, err := pgx.ParseConfig(sc.URL)
	if err != nil {
		return nil, ErrInvalidSourceURL
	}
	cfg.ConnectTimeout = 10 * time.Second
	if sc.Dial != nil {
		cfg.DialFunc = sc.Dial
	}
	if sc.Lookup != nil {
		cfg.LookupFunc = sc.Lookup
	}
	cfg.RuntimeParams["application_name"] = "capydb-preflight"
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, &UnreachableError{err}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	f := &SourceFacts{Extensions: []SourceExtension{}}
	if err := conn.QueryRow(cctx, `SELECT current_setting('server_version'), current_setting('server_version_num')::int / 10000,
		pg_database_size(current_database())`).Scan(&f.ServerVersion, &f.Major, &f.DatabaseSizeBytes); err != nil {
		return nil, fmt.Errorf("while inspecting the source: %w", err)
	}
	rows, err := conn.Query(cctx, `SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	exts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SourceExtension, error) {
		var e SourceExtension
		return e, r.Scan(&e.Name, &e.Version)
	})
	if err != nil {
		return nil, err
	}
	f.Extensions = exts
	// The rest is informative: a source that hides it is still importable.
	rows, err = conn.Query(cctx, `SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema')
		AND nspname NOT LIKE 'pg\_%' ORDER BY 1`)
	if err == nil {
		f.AppSchemas, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	rows, err = conn.Query(cctx, `SELECT evtname FROM pg_event_trigger ORDER BY 1`)
	if err == nil {
		f.EventTriggers, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	_ = conn.QueryRow(cctx, `SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int,
		current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_replication_slots)`).Scan(
		&f.WALLevel, &f.MaxReplicationSlots, &f.MaxWALSenders, &f.UsedReplicationSlots)
	_ = conn.QueryRow(cctx, `SELECT count(*) FROM pg_stat_replication`).Scan(&f.UsedWALSenders)
	_ = conn.QueryRow(cctx, `SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&f.RoleCanReplicate)
	if rows, err := conn.Query(cctx, noIdentitySQL); err == nil {
		f.NoReplicaIdentity, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if rows, err := conn.Query(cctx, applyTriggersSQL); err == nil {
		f.ApplyTriggers, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	return f, nil
}
