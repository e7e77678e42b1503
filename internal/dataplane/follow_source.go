package dataplane

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The source side of a follow import runs with the user's own credentials
// on the user's server: a publication of its tables, the slot (made by the
// subscriber's CREATE SUBSCRIPTION), positions and sequences.

// connectSource opens a session on an import source the way InspectSource
// does (the caller's address rules apply at connect time).
func connectSource(ctx context.Context, sc SourceConfig) (*pgx.Conn, error) {
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
	cfg.RuntimeParams["application_name"] = "capydb-follow"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &UnreachableError{err}
	}
	return conn, nil
}

// sourceTablesSQL: the user tables a follow import publishes (those a
// schema dump carries; extension-owned tables stay behind).
const sourceTablesSQL = `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'r' AND NOT c.relispartition AND n.nspname NOT IN ('information_schema') AND n.nspname NOT LIKE 'pg\_%'
	  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
	ORDER BY 1`

// CreatePublication publishes the source's user tables as name (kept when
// it exists already: a retried start). It returns the published tables.
func CreatePublication(ctx context.Context, sc SourceConfig, name string) ([]string, error) {
	conn, err := connectSource(ctx, sc)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, sourceTablesSQL)
	if err != nil {
		return nil, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)`, name).Scan(&exists); err != nil {
		return nil, err
	}
	if exists {
		return tables, nil
	}
	sql := `CREATE PUBLICATION ` + ident(name)
	if len(tables) > 0 {
		sql += ` FOR TABLE ` + strings.Join(tables, ", ")
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return nil, fmt.Errorf("while creating the publication on the source: %w", err)
	}
	return tables, nil
}

// DropSourceObjects removes the publication and, when it is still there and
// idle, the slot named name from the source. It reports whether a slot
// remains (an active one belongs to a subscriber still streaming).
func DropSourceObjects(ctx context.Context, sc SourceConfig, name string) (slotLeft bool, err error) {
	conn, err := connectSource(ctx, sc)
	if err != nil {
		return true, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `DROP PUBLICATION IF EXISTS `+ident(name)); err != nil {
		return true, fmt.Errorf("while dropping the publication on the source: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
		WHERE slot_name = $1 AND NOT active`, name); err != nil {
		return true, fmt.Errorf("while dropping the replication slot on the source: %w", err)
	}
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`, name).Scan(&slotLeft)
	return slotLeft, err
}

// SourcePosition is where the source's WAL is and how far the slot has
// confirmed it.
type SourcePosition struct {
	CurrentLSN   string
	ConfirmedLSN string // "" without the slot
	LagBytes     *int64 // nil without the slot
}

// ReadSourcePosition reads the source's WAL position and the slot's lag.
func ReadSourcePosition(ctx context.Context, sc SourceConfig, slot string) (*SourcePosition, error) {
	conn, err := connectSource(ctx, sc)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return sourcePosition(ctx, conn, slot)
}

func sourcePosition(ctx context.Context, conn *pgx.Conn, slot string) (*SourcePosition, error) {
	p := &SourcePosition{}
	var confirmed *string
	err := conn.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text,
		(SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1),
		(SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1)`,
		slot).Scan(&p.CurrentLSN, &confirmed, &p.LagBytes)
	if confirmed != nil {
		p.ConfirmedLSN = *confirmed
	}
	return p, err
}

// SourceSequences reads the position of every sequence the source login
// can see that has been used (pg_sequences.last_value is null otherwise).
func SourceSequences(ctx context.Context, sc SourceConfig) ([]SequenceValue, error) {
	conn, err := connectSource(ctx, sc)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT schemaname::text, sequencename::text, last_value FROM pg_sequences
		WHERE last_value IS NOT NULL AND schemaname NOT IN ('information_schema') AND schemaname NOT LIKE 'pg\_%' ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (SequenceValue, error) {
		var s SequenceValue
		return s, r.Scan(&s.Schema, &s.Name, &s.LastValue)
	})
}

// LSNAtLeast compares two pg_lsn texts ("16/B374D848").
func LSNAtLeast(a, b string) bool {
	pa, oka := parseLSN(a)
	pb, okb := parseLSN(b)
	return oka && okb && pa >= pb
}

func parseLSN(s string) (uint64, bool) {
	var hi, lo uint64
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, false
	}
	return hi<<32 | lo, true
}
