package dataplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/scram"
)

// The isolation rule (docs/security.md): a tenant owns everything inside its
// database and can plant code there — constraints, defaults, triggers, index
// expressions, functions and operators that shadow pg_catalog, a database
// search_path. So nothing CapyDB runs inside a tenant database may hold more
// rights than the tenant. Work there runs logged in as an *agent*: a
// short-lived login created for one operation, a member of the tenant's own
// roles and of nothing else, whose sessions act as the tenant's owner. SET
// ROLE from a superuser session is not used: tenant code can RESET it.
//
// The superuser (admin pool) only connects to the "postgres" database, which
// no tenant can reach, and to databases that hold no tenant objects yet (a
// fresh restore target, the template).

// agentPrefix names agent roles; the pooler never publishes them and
// SweepAgents drops leftovers of crashed workers.
const agentPrefix = "capydb_agent_"

// agentValidity bounds how long an agent's password works, so a leftover
// agent is useless even before it is swept.
const agentValidity = 24 * time.Hour

// IsAgentRole reports whether a role name is one of CapyDB's agents.
func IsAgentRole(name string) bool { return strings.HasPrefix(name, agentPrefix) }

// agent is a login holding exactly the rights of one tenant.
type agent struct {
	c        *Cluster
	role     string
	password string
	actAs    string // the role its sessions run as (SET role default)

	mu   sync.Mutex      // copy workers connect concurrently
	used map[string]bool // databases it connected to
}

// agentSettings override, per role, anything the tenant set on its database
// (ALTER DATABASE … SET search_path, read-only defaults, short timeouts):
// role-level settings take precedence over database-level ones.
var agentSettings = [][2]string{
	{"search_path", "pg_catalog, pg_temp"},
	{"statement_timeout", "0"},
	{"lock_timeout", "0"},
	{"idle_in_transaction_session_timeout", "0"},
	{"default_transaction_read_only", "off"},
	// A row-level-security policy must never silently hide rows from a copy:
	// with row_security off, a query it would filter fails instead.
	{"row_security", "off"},
}

// newAgent creates an agent acting as actAs, a member of actAs and of the
// logins that are members of it (a tenant's rotated logins own objects
// too). None of them may be a superuser or a built-in role.
func (c *Cluster) newAgent(ctx context.Context, actAs string) (*agent, error) {
	return c.createAgent(ctx, true, actAs)
}

// newUnionAgent creates an agent whose sessions keep its own identity, so
// they hold the rights of every role it is a member of at once: moving
// objects from one of a project's roles to another needs both. It is for
// ALTER … OWNER only, which runs no tenant code.
func (c *Cluster) newUnionAgent(ctx context.Context, to, from string) (*agent, error) {
	return c.createAgent(ctx, false, to, from)
}

func (c *Cluster) createAgent(ctx context.Context, setRole bool, actAs string, extra ...string) (*agent, error) {
	owners := append([]string{actAs}, extra...) // extra: the other role of a union agent
	rows, err := c.admin.Query(ctx, `
		SELECT r.rolname, r.rolsuper OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls OR r.rolname LIKE 'pg\_%'
		FROM pg_catalog.pg_roles r
		WHERE r.rolname OPERATOR(pg_catalog.=) ANY ($1::text[])
		   OR r.oid IN (SELECT m.member FROM pg_catalog.pg_auth_members m
		                JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) m.roleid
		                WHERE o.rolname OPERATOR(pg_catalog.=) ANY ($1::text[]))`, owners)
	if err != nil {
		return nil, err
	}
	var grants []string
	found := map[string]bool{}
	var name string
	var privileged bool
	_, err = pgx.ForEachRow(rows, []any{&name, &privileged}, func() error {
		if IsAgentRole(name) || IsFollowRole(name) {
			return nil // a follow role is a member of the owner, not one of its logins
		}
		if privileged {
			return fmt.Errorf("role %s has rights beyond a tenant's; CapyDB will not act as it", name)
		}
		found[name] = true
		grants = append(grants, ident(name))
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, o := range owners {
		if !found[o] {
			return nil, &ForeignObjectError{Msg: fmt.Sprintf("role %s does not exist", o)}
		}
	}
	buf := make([]byte, 8)
	if _, err := rand.Read(buf); err != nil {
		return nil, err
	}
	a := &agent{c: c, role: agentPrefix + hex.EncodeToString(buf), password: ids.RandomBase62(40), actAs: actAs, used: map[string]bool{}}
	verifier, err := scram.Verifier(a.password)
	if err != nil {
		return nil, err
	}
	stmts := []string{
		`CREATE ROLE ` + ident(a.role) + ` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT` +
			` CONNECTION LIMIT 64 VALID UNTIL ` + literal(time.Now().Add(agentValidity).UTC().Format(time.RFC3339)) +
			` PASSWORD ` + literal(verifier),
		`GRANT ` + strings.Join(grants, ", ") + ` TO ` + ident(a.role),
	}
	if setRole {
		stmts = append(stmts, `ALTER ROLE `+ident(a.role)+` SET role = `+literal(actAs))
	}
	for _, s := range agentSettings {
		stmts = append(stmts, `ALTER ROLE `+ident(a.role)+` SET `+s[0]+` = `+literal(s[1]))
	}
	tx, err := c.admin.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("while creating a maintenance login for %s: %w", actAs, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// agentForDatabase creates an agent acting as the owner of db.
func (c *Cluster) agentForDatabase(ctx context.Context, db string) (*agent, error) {
	owner, err := c.databaseOwner(ctx, db)
	if err != nil {
		return nil, err
	}
	return c.newAgent(ctx, owner)
}

// databaseOwner names the owner of db.
func (c *Cluster) databaseOwner(ctx context.Context, db string) (string, error) {
	var owner string
	err := c.admin.QueryRow(ctx, `SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database
		WHERE datname OPERATOR(pg_catalog.=) $1`, db).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", &ForeignObjectError{Msg: fmt.Sprintf("database %s does not exist", db)}
	}
	return owner, err
}

// url is the cluster's URL for db with the agent as its user and no
// password, and records db for close.
func (a *agent) url(db string) (*url.URL, error) {
	u, err := url.Parse(a.c.dsnFor(db))
	if err != nil {
		return nil, fmt.Errorf("while reading the cluster DSN: %w", err)
	}
	u.User = url.User(a.role)
	a.mu.Lock()
	a.used[db] = true
	a.mu.Unlock()
	return u, nil
}

// toolDSN is the agent's URL for db without its password, and the password
// (for PGPASSWORD, so it never appears on a command line).
func (a *agent) toolDSN(db string) (string, string, error) {
	u, err := a.url(db)
	if err != nil {
		return "", "", err
	}
	return u.String(), a.password, nil
}

// connect opens a session on db as the agent.
func (a *agent) connect(ctx context.Context, db, app string) (*pgx.Conn, error) {
	u, err := a.url(db)
	if err != nil {
		return nil, err
	}
	u.User = url.UserPassword(a.role, a.password)
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = app
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("while connecting to %s: %w", db, err)
	}
	return conn, nil
}

// close drops the agent. Objects tenant code created as the agent itself
// (after RESET ROLE) are handed to the role it acted as first.
func (a *agent) close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	a.mu.Lock()
	used := maps.Clone(a.used)
	a.mu.Unlock()
	return a.c.dropAgent(ctx, a.role, a.actAs, a.password, used)
}

func (c *Cluster) dropAgent(ctx context.Context, role, actAs, password string, used map[string]bool) error {
	if _, err := c.admin.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
		WHERE usename OPERATOR(pg_catalog.=) $1`, role); err != nil {
		return err
	}
	_, err := c.admin.Exec(ctx, `DROP ROLE IF EXISTS `+ident(role))
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "2BP01" || password == "" {
		return err
	}
	// dependent_objects_still_exist: hand them over from inside each database
	// the agent used, as the agent itself (it is a member of both roles).
	a := &agent{c: c, role: role, password: password, actAs: actAs, used: map[string]bool{}}
	for db := range used {
		conn, cerr := a.connect(ctx, db, "capydb-agent-cleanup")
		if cerr != nil {
			continue // the database is gone, and its objects with it
		}
		_, cerr = conn.Exec(ctx, `REASSIGN OWNED BY `+ident(role)+` TO `+ident(actAs)+`; DROP OWNED BY `+ident(role))
		conn.Close(ctx)
		if cerr != nil {
			return fmt.Errorf("while handing over the objects of %s: %w", role, cerr)
		}
	}
	_, _ = c.admin.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
		WHERE usename OPERATOR(pg_catalog.=) $1`, role)
	_, err = c.admin.Exec(ctx, `DROP ROLE IF EXISTS `+ident(role))
	return err
}

// SweepAgents drops agents left behind by a crashed worker: those created
// more than half their validity ago (no operation runs that long). An agent
// that still owns objects loses its login and stays for an operator.
func (c *Cluster) SweepAgents(ctx context.Context) (int, error) {
	rows, err := c.admin.Query(ctx, `SELECT rolname FROM pg_catalog.pg_roles
		WHERE rolname LIKE 'capydb\_agent\_%' AND rolvaliduntil < pg_catalog.now() + $1::interval`,
		fmt.Sprintf("%d seconds", int(agentValidity.Seconds()/2)))
	if err != nil {
		return 0, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range names {
		if err := c.dropAgent(ctx, r, "", "", nil); err != nil {
			_, _ = c.admin.Exec(ctx, `ALTER ROLE `+ident(r)+` NOLOGIN`)
			continue
		}
		n++
	}
	return n, nil
}
