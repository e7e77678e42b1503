package dataplane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Follow imports (docs/follow-imports.md) stream a source into a tenant
// database with logical replication: a subscription in the tenant database.
//
// Postgres 15 lets only a superuser create a subscription, and its apply
// worker runs as the subscription's owner, executing tenant code (triggers
// enabled ALWAYS/REPLICA, index expressions, defaults, constraints) as that
// role. So the subscription is owned by a follow role: a member of the
// tenant's owner and of nothing else, never a superuser once committed,
// whose password login is impossible (no password, VALID UNTIL epoch). Postgres 15
// wants a superuser as the new owner, so the one transaction that hands the
// subscription over makes the role a superuser and takes it back before
// committing: no session ever sees it privileged. An event trigger
// (ENABLE ALWAYS, so it also fires inside the apply worker) refuses
// CREATE/ALTER/DROP SUBSCRIPTION to anyone but a superuser, so tenant code
// running as the follow role cannot re-point the subscription's connection.

// FollowRolePrefix names follow roles; agents and the pooler skip them.
const FollowRolePrefix = "capydb_follow_"

// IsFollowRole reports whether a role name is one of CapyDB's follow roles.
func IsFollowRole(name string) bool { return strings.HasPrefix(name, FollowRolePrefix) }

const followSchema = "capydb_follow"

// FollowParams name the objects of one follow import.
type FollowParams struct {
	DB    string // tenant database
	Owner string // tenant owner role
	// Name is the subscription's, its slot's and its publication's name,
	// and the follow role is FollowRolePrefix+Name.
	Name     string
	ConnInfo string // libpq connection string of the source (password included)
}

func (p FollowParams) role() string { return FollowRolePrefix + p.Name }

// followConnect opens a superuser session on a tenant database for the
// subscription statements only: CREATE/ALTER/DROP SUBSCRIPTION and catalog
// reads with a pinned search_path and qualified names execute no
// tenant-defined code (tenants cannot create event triggers, casts or
// anything else these statements would call).
func (c *Cluster) followConnect(ctx context.Context, db string) (*pgx.Conn, error) {
	conn, err := c.adminConnect(ctx, db)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0; SET default_transaction_read_only = off`); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// CreateSubscription makes (or finds, on a retry) the follow role, the
// guard and the enabled subscription; creating it creates the slot on the
// source, and enabling it starts the initial copy.
func (c *Cluster) CreateSubscription(ctx context.Context, p FollowParams) error {
	role := p.role()
	var exists bool
	if err := c.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1)`, role).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := c.admin.Exec(ctx, `CREATE ROLE `+ident(role)+` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT
			PASSWORD NULL VALID UNTIL 'epoch'`); err != nil {
			return fmt.Errorf("while creating the follow role: %w", err)
		}
	}
	if _, err := c.admin.Exec(ctx, `GRANT `+ident(p.Owner)+` TO `+ident(role)); err != nil {
		return err
	}
	conn, err := c.followConnect(ctx, p.DB)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := installGuard(ctx, conn); err != nil {
		return err
	}
	var have bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription
		WHERE subname OPERATOR(pg_catalog.=) $1 AND subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))`,
		p.Name).Scan(&have); err != nil {
		return err
	}
	if !have {
		if _, err := conn.Exec(ctx, `CREATE SUBSCRIPTION `+ident(p.Name)+` CONNECTION `+literal(p.ConnInfo)+
			` PUBLICATION `+ident(p.Name)+` WITH (enabled = false, slot_name = `+literal(p.Name)+`)`); err != nil {
			return fmt.Errorf("while creating the subscription: %w", err)
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	for _, s := range []string{
		`ALTER ROLE ` + ident(role) + ` SUPERUSER`,
		`ALTER SUBSCRIPTION ` + ident(p.Name) + ` OWNER TO ` + ident(role),
		`ALTER ROLE ` + ident(role) + ` NOSUPERUSER`,
	} {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("while handing the subscription to its role: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `ALTER SUBSCRIPTION `+ident(p.Name)+` ENABLE`); err != nil {
		return err
	}
	return nil
}

// installGuard creates the superuser-owned schema, function and event
// trigger that keep subscriptions in CapyDB's hands.
func installGuard(ctx context.Context, conn *pgx.Conn) error {
	var owner *string
	if err := conn.QueryRow(ctx, `SELECT (SELECT r.rolsuper::pg_catalog.text FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) n.nspowner)
		FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) $1`, followSchema).Scan(&owner); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if owner != nil && *owner != "true" {
		return &ForeignObjectError{Msg: "schema " + followSchema + " exists and belongs to the tenant; rename it to start a follow import"}
	}
	for _, s := range []string{
		`CREATE SCHEMA IF NOT EXISTS ` + followSchema,
		`REVOKE ALL ON SCHEMA ` + followSchema + ` FROM PUBLIC`,
		`CREATE OR REPLACE FUNCTION ` + followSchema + `.guard() RETURNS event_trigger LANGUAGE plpgsql
			SET search_path = pg_catalog, pg_temp AS $$
			BEGIN
				IF NOT pg_catalog.current_setting('is_superuser')::pg_catalog.bool THEN
					RAISE EXCEPTION 'subscriptions in this database are managed by CapyDB';
				END IF;
			END $$`,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("while installing the subscription guard: %w", err)
		}
	}
	var has bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname OPERATOR(pg_catalog.=) 'capydb_follow_guard')`).Scan(&has); err != nil {
		return err
	}
	if !has {
		if _, err := conn.Exec(ctx, `CREATE EVENT TRIGGER capydb_follow_guard ON ddl_command_start
			WHEN TAG IN ('CREATE SUBSCRIPTION', 'ALTER SUBSCRIPTION', 'DROP SUBSCRIPTION')
			EXECUTE FUNCTION `+followSchema+`.guard()`); err != nil {
			return err
		}
	}
	_, err := conn.Exec(ctx, `ALTER EVENT TRIGGER capydb_follow_guard ENABLE ALWAYS`)
	return err
}

// TableSync is one subscribed table and its sync state (pg_subscription_rel:
// i init, d copying, f/s finishing, r ready).
type TableSync struct {
	Table string `json:"table"`
	State string `json:"state"`
}

// SubscriptionStatus is what the subscriber knows about its stream.
type SubscriptionStatus struct {
	Exists      bool
	Enabled     bool
	Active      bool   // the apply worker runs
	ReceivedLSN string // "" when unknown
	LastMsgAt   *time.Time
	Tables      []TableSync
}

// AllReady: every table finished its initial copy.
func (s *SubscriptionStatus) AllReady() bool {
	for _, t := range s.Tables {
		if t.State != "r" {
			return false
		}
	}
	return true
}

// Subscription reads the state of the follow import's subscription.
func (c *Cluster) Subscription(ctx context.Context, db, name string) (*SubscriptionStatus, error) {
	st := &SubscriptionStatus{Tables: []TableSync{}}
	err := c.admin.QueryRow(ctx, `SELECT s.subenabled, a.pid IS NOT NULL, COALESCE(a.received_lsn::pg_catalog.text, ''), a.last_msg_receipt_time
		FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) s.subdbid
		LEFT JOIN pg_catalog.pg_stat_subscription a ON a.subid OPERATOR(pg_catalog.=) s.oid AND a.relid IS NULL
		WHERE s.subname OPERATOR(pg_catalog.=) $1 AND d.datname OPERATOR(pg_catalog.=) $2`, name, db).
		Scan(&st.Enabled, &st.Active, &st.ReceivedLSN, &st.LastMsgAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.Exists = true
	conn, err := c.followConnect(ctx, db)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), r.srsubstate::pg_catalog.text
		FROM pg_catalog.pg_subscription_rel r JOIN pg_catalog.pg_subscription s ON s.oid OPERATOR(pg_catalog.=) r.srsubid
		JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.srrelid JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
		WHERE s.subname OPERATOR(pg_catalog.=) $1 ORDER BY 1`, name)
	if err != nil {
		return nil, err
	}
	st.Tables, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (TableSync, error) {
		var t TableSync
		return t, r.Scan(&t.Table, &t.State)
	})
	return st, err
}

// DropSubscription ends a follow import on the subscriber: the subscription
// (and, unless keepSlot, its slot on the source), the guard and the follow
// role. keepSlot is for a source that cannot be reached: the slot is then
// left there, and the caller says so. Safe to repeat.
func (c *Cluster) DropSubscription(ctx context.Context, p FollowParams, keepSlot bool) error {
	conn, err := c.followConnect(ctx, p.DB)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var have bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription
		WHERE subname OPERATOR(pg_catalog.=) $1 AND subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database()))`,
		p.Name).Scan(&have); err != nil {
		return err
	}
	if have {
		if _, err := conn.Exec(ctx, `ALTER SUBSCRIPTION `+ident(p.Name)+` DISABLE`); err != nil {
			return err
		}
		if keepSlot {
			if _, err := conn.Exec(ctx, `ALTER SUBSCRIPTION `+ident(p.Name)+` SET (slot_name = NONE)`); err != nil {
				return err
			}
		}
		// The walsender of the stopped worker may hold the slot for a moment.
		for i := 0; ; i++ {
			_, err = conn.Exec(ctx, `DROP SUBSCRIPTION IF EXISTS `+ident(p.Name))
			var pgErr *pgconn.PgError
			if err == nil || i == 50 || !errors.As(err, &pgErr) || !strings.Contains(pgErr.Message, "is active") {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("while dropping the subscription: %w", err)
		}
	}
	for _, s := range []string{`DROP EVENT TRIGGER IF EXISTS capydb_follow_guard`, `DROP SCHEMA IF EXISTS ` + followSchema + ` CASCADE`} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return err
		}
	}
	_, err = c.admin.Exec(ctx, `DROP ROLE IF EXISTS `+ident(p.role()))
	return err
}

// SequenceValue is a sequence's position on the source.
type SequenceValue struct {
	Schema, Name string
	LastValue    int64
}

// SetSequences moves the tenant's sequences to the source's positions, as
// an agent of owner (setval runs no tenant code, but the rule holds).
// Sequences missing on the target are skipped and returned.
func (c *Cluster) SetSequences(ctx context.Context, db, owner string, seqs []SequenceValue) ([]string, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	a, err := c.newAgent(ctx, owner)
	if err != nil {
		return nil, err
	}
	defer a.close(ctx) //nolint:errcheck
	conn, err := a.connect(ctx, db, "capydb-follow")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var missing []string
	for _, s := range seqs {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::pg_catalog.text, $2::pg_catalog.text)) IS NOT NULL`,
			s.Schema, s.Name).Scan(&ok); err != nil {
			return nil, err
		}
		if !ok {
			missing = append(missing, s.Schema+"."+s.Name)
			continue
		}
		if _, err := conn.Exec(ctx, `SELECT pg_catalog.setval(pg_catalog.format('%I.%I', $1::pg_catalog.text, $2::pg_catalog.text)::pg_catalog.regclass, $3, true)`,
			s.Schema, s.Name, s.LastValue); err != nil {
			return nil, fmt.Errorf("while setting sequence %s.%s: %w", s.Schema, s.Name, err)
		}
	}
	return missing, nil
}
