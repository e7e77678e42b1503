// Package dataplane holds the Postgres admin primitives CapyDB runs on a
// customer cluster: tenant databases and roles, passwords, logins. It is the
// only package that talks to customer clusters. Every operation is
// idempotent (create-if-missing, drop-if-exists) so job retries are safe.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/scram"
)

// TemplateDatabase is the template every tenant database is created from; it
// carries the default extensions so each CREATE DATABASE is one copy.
const TemplateDatabase = "capydb_template"

// DefaultExtensions are enabled in new projects when the cluster has them.
// pg_qualstats and hypopg feed the index advisor; neither is trusted, so
// only the template (which holds no tenant object) can get them.
var DefaultExtensions = []string{"vector", "pgcrypto", "uuid-ossp", "pg_trgm", "pg_qualstats", "hypopg"}

// Pooler is the cluster's pgBouncer: its auth file and database list are
// regenerated from the cluster catalogs and reloaded.
type Pooler interface {
	SyncPooler(ctx context.Context) error
	// SyncPoolerLater syncs soon, off the caller's path (provisioning: a
	// new tenant needs nothing from the pooler before its first login).
	SyncPoolerLater()
	ReconnectPooler(ctx context.Context, db string) error
}

// Cluster is an admin handle on one Postgres cluster.
type Cluster struct {
	ID      string
	admin   *pgxpool.Pool
	dsnFor  func(db string) string
	pooler  Pooler
	network Network
	binDir  string // pg_dump, pg_restore (clones, dumps)
	tmpDir  string // private scratch files
	clone   CloneOptions
	warm    *WarmPool          // nil: provisions create their database
	crashAt func(point string) // tests: --unsafe-crash-at
	statsState
}

// Config describes a cluster to open.
type Config struct {
	ID string
	// DSNFor returns the superuser DSN of a database of the cluster.
	DSNFor func(db string) string
	// Pooler is the cluster's pgBouncer (nil: none).
	Pooler Pooler
	// Network applies network rules (nil: none).
	Network Network
	// MaxConns bounds the admin pool (0: pgx's default).
	MaxConns int32
	// ToolsDir holds pg_dump and pg_restore of the cluster's major version;
	// clones, dumps and restores need it.
	ToolsDir string
	// TempDir is a private (0700) directory for dumps, archive lists and
	// schema files; "" means the system's temporary directory (tests).
	TempDir string
	Clone   CloneOptions
	// CrashAt is called at named points of multi-step work (tests kill the
	// process there); nil in production.
	CrashAt func(point string)
}

// Open connects to a cluster as its superuser.
func Open(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.ID == "" || cfg.DSNFor == nil {
		return nil, errors.New("dataplane: a cluster needs an ID and a DSN")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSNFor("postgres"))
	if err != nil {
		return nil, fmt.Errorf("while parsing the admin DSN of cluster %s: %w", cfg.ID, err)
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	// The admin pool only ever connects to "postgres", where no tenant can
	// plant code; the pinned search_path is defence in depth. Its role and
	// password statements carry SCRAM verifiers: keep them out of
	// pg_stat_statements, which tenants with the extension can read.
	pcfg.ConnConfig.RuntimeParams["search_path"] = "pg_catalog, pg_temp"
	pcfg.ConnConfig.RuntimeParams["pg_stat_statements.track_utility"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("while connecting to cluster %s: %w", cfg.ID, err)
	}
	return &Cluster{ID: cfg.ID, admin: pool, dsnFor: cfg.DSNFor, pooler: cfg.Pooler, network: cfg.Network,
		binDir: cfg.ToolsDir, tmpDir: cfg.TempDir, clone: cfg.Clone.withDefaults(), crashAt: cfg.CrashAt}, nil
}

// Close releases the admin pool.
func (c *Cluster) Close() { c.admin.Close() }

// Ping checks the cluster answers.
func (c *Cluster) Ping(ctx context.Context) error { return c.admin.Ping(ctx) }

// Admin exposes the admin pool (tests and benchmarks measure against it).
func (c *Cluster) Admin() *pgxpool.Pool { return c.admin }

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// literal quotes a string constant for utility statements, which take no parameters.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// templateNote, the template database's comment, records which default
// extensions it was made with, so a server that offers more tops it up.
func templateNote() string { return "capydb defaults: " + strings.Join(DefaultExtensions, ",") }

// EnsureTemplate creates the template database with the default extensions
// the cluster can provide, or adds those missing from a template an older
// CapyDB made. Safe to call concurrently from several servers.
func (c *Cluster) EnsureTemplate(ctx context.Context) (err error) {
	conn, err := c.admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('capydb.template'))`); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('capydb.template'))`) //nolint:errcheck
	var isTemplate bool
	var note *string
	err = conn.QueryRow(ctx, `SELECT datistemplate, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`,
		TemplateDatabase).Scan(&isTemplate, &note)
	switch {
	case err == nil && isTemplate && note != nil && *note == templateNote():
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+ident(TemplateDatabase)+` TEMPLATE template1`); err != nil {
			return fmt.Errorf("while creating the template database: %w", err)
		}
	case err != nil:
		return err
	case isTemplate:
		// Made by an older CapyDB: open it briefly (it holds no tenant
		// object) and close it again whatever happens.
		if _, err := conn.Exec(ctx, `ALTER DATABASE `+ident(TemplateDatabase)+` WITH ALLOW_CONNECTIONS true`); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				_, _ = conn.Exec(context.WithoutCancel(ctx), `ALTER DATABASE `+ident(TemplateDatabase)+` WITH ALLOW_CONNECTIONS false`)
			}
		}()
	}
	if err := c.installDefaultExtensions(ctx); err != nil {
		return err
	}
	if _, err = conn.Exec(ctx, `ALTER DATABASE `+ident(TemplateDatabase)+` WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `COMMENT ON DATABASE `+ident(TemplateDatabase)+` IS `+literal(templateNote()))
	return err
}

// installDefaultExtensions creates the default extensions the cluster can
// provide in the template (IF NOT EXISTS: a top-up adds only what is missing).
func (c *Cluster) installDefaultExtensions(ctx context.Context) error {
	tconn, err := c.adminConnect(ctx, TemplateDatabase)
	if err != nil {
		return fmt.Errorf("while connecting to the template database: %w", err)
	}
	defer tconn.Close(context.WithoutCancel(ctx))
	available := map[string]bool{}
	rows, err := tconn.Query(ctx, `SELECT name FROM pg_available_extensions`)
	if err == nil {
		names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range names {
			available[n] = true
		}
	}
	// pg_qualstats only works preloaded; without it the advisor says so.
	var preload string
	if err := tconn.QueryRow(ctx, `SELECT current_setting('shared_preload_libraries')`).Scan(&preload); err != nil {
		return err
	}
	if !slices.Contains(strings.Split(strings.ReplaceAll(preload, " ", ""), ","), "pg_qualstats") {
		available["pg_qualstats"] = false
	}
	for _, ext := range DefaultExtensions {
		if !available[ext] {
			continue
		}
		if _, err := tconn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS `+ident(ext)+` SCHEMA public`); err != nil {
			return fmt.Errorf("while enabling %s in the template: %w", ext, err)
		}
	}
	return nil
}

// AllowedExtensions is the allowlist tenants may enable (plpgsql is implicit).
var AllowedExtensions = []string{"pg_stat_statements", "pgcrypto", "uuid-ossp", "citext", "hstore", "pg_trgm",
	"vector", "postgis", "unaccent", "ltree", "fuzzystrmatch", "btree_gin", "btree_gist", "pg_qualstats", "hypopg"}

// Extensions lists the allowlisted extensions this cluster has installed.
func (c *Cluster) Extensions(ctx context.Context) ([]string, error) {
	rows, err := c.admin.Query(ctx, `SELECT name FROM pg_available_extensions WHERE name = ANY($1) ORDER BY name`, AllowedExtensions)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Tenant describes a database and the login role that owns it.
type Tenant struct {
	Database               string
	Role                   string
	Password               string
	ConnectionLimit        int
	StatementTimeout       string
	IdleTransactionTimeout string
}

// CreateTenant makes (or completes) the role and the database it owns and
// locks the database to its owner. pgBouncer needs no RELOAD to serve it
// (auth_query, the "*" database line): the pooler sync is deferred.
func (c *Cluster) CreateTenant(ctx context.Context, t Tenant) error {
	var roleExisted, dbExisted bool
	err := c.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		EXISTS (SELECT 1 FROM pg_database WHERE datname = $2)`, t.Role, t.Database).Scan(&roleExisted, &dbExisted)
	if err != nil {
		return err
	}
	if c.warm != nil && !roleExisted && !dbExisted {
		// A first attempt takes a database made ahead of time (warmpool.go):
		// owner, extensions and CONNECT are already as below.
		claimed, err := c.claimWarm(ctx, t)
		if err != nil {
			return err
		}
		if claimed {
			c.syncPoolerLater()
			return nil
		}
	}
	if err := c.EnsureLoginRole(ctx, t.Role, t.Password, t.ConnectionLimit, t.StatementTimeout, t.IdleTransactionTimeout); err != nil {
		return err
	}
	var owner string
	err = c.admin.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, t.Database).Scan(&owner)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if exists && owner != t.Role {
		// Not ours (or not from an earlier attempt): never adopt it.
		return &ForeignObjectError{Msg: fmt.Sprintf("database %s already exists and belongs to %s", t.Database, owner)}
	}
	if !exists {
		_, err := c.admin.Exec(ctx, `CREATE DATABASE `+ident(t.Database)+` OWNER `+ident(t.Role)+` TEMPLATE `+ident(TemplateDatabase))
		if err != nil && !isDuplicate(err) {
			return fmt.Errorf("while creating database %s: %w", t.Database, err)
		}
	}
	if err := c.adoptExtensions(ctx, t.Database, t.Role, ""); err != nil {
		return err
	}
	if _, err := c.admin.Exec(ctx, `REVOKE ALL ON DATABASE `+ident(t.Database)+` FROM PUBLIC`); err != nil {
		return fmt.Errorf("while restricting database %s: %w", t.Database, err)
	}
	// pgBouncer finds the role with auth_query and the database through its
	// "*" line: nothing to reload (localcluster/poolerauth.go).
	c.syncPoolerLater()
	// A retried provision may find pooler connections made with an earlier
	// attempt's credentials: recycle them. A first attempt has none.
	if !roleExisted && !exists {
		return nil
	}
	return c.reconnect(ctx, t.Database)
}

// EnsureLoginRole creates the role or brings an existing one to the wanted
// attributes, password, limit and timeouts. Tenant roles are never
// superuser and never get CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS.
func (c *Cluster) EnsureLoginRole(ctx context.Context, role, password string, connLimit int, statementTimeout, idleTxTimeout string) error {
	var current *string
	err := c.admin.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&current)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	attrs := fmt.Sprintf(` LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT %d`, connLimit)
	if !exists || current == nil || !scram.Matches(*current, password) {
		verifier, err := scram.Verifier(password)
		if err != nil {
			return err
		}
		attrs += ` PASSWORD ` + literal(verifier)
	}
	if !exists {
		_, err = c.admin.Exec(ctx, `CREATE ROLE `+ident(role)+attrs)
		if err != nil && !isDuplicate(err) {
			return fmt.Errorf("while creating role %s: %w", role, err)
		}
	}
	if exists || isDuplicate(err) {
		if _, err := c.admin.Exec(ctx, `ALTER ROLE `+ident(role)+attrs); err != nil {
			return fmt.Errorf("while updating role %s: %w", role, err)
		}
	}
	return c.SetTimeouts(ctx, role, statementTimeout, idleTxTimeout)
}

// SetTimeouts applies the plan's timeouts to a role.
func (c *Cluster) SetTimeouts(ctx context.Context, role, statementTimeout, idleTxTimeout string) error {
	if _, err := c.admin.Exec(ctx, `ALTER ROLE `+ident(role)+` SET statement_timeout = `+literal(statementTimeout)); err != nil {
		return fmt.Errorf("while setting statement_timeout on %s: %w", role, err)
	}
	if _, err := c.admin.Exec(ctx, `ALTER ROLE `+ident(role)+` SET idle_in_transaction_session_timeout = `+literal(idleTxTimeout)); err != nil {
		return fmt.Errorf("while setting idle_in_transaction_session_timeout on %s: %w", role, err)
	}
	return nil
}

// SetPassword changes a role's password and republishes the pooler's auth
// file; server connections to db are recycled so none outlives the change.
func (c *Cluster) SetPassword(ctx context.Context, role, password, db string) error {
	verifier, err := scram.Verifier(password)
	if err != nil {
		return err
	}
	if _, err := c.admin.Exec(ctx, `ALTER ROLE `+ident(role)+` PASSWORD `+literal(verifier)); err != nil {
		return fmt.Errorf("while changing the password of %s: %w", role, err)
	}
	if err := c.SyncPooler(ctx); err != nil {
		return err
	}
	return c.reconnect(ctx, db)
}

// CreateMemberLogin creates a login role that acts as owner: it is a member of
// owner and sessions start as owner, so objects it creates belong to owner.
func (c *Cluster) CreateMemberLogin(ctx context.Context, login, owner, password string, connLimit int, statementTimeout, idleTxTimeout string) error {
	if err := c.EnsureLoginRole(ctx, login, password, connLimit, statementTimeout, idleTxTimeout); err != nil {
		return err
	}
	if _, err := c.admin.Exec(ctx, `GRANT `+ident(owner)+` TO `+ident(login)); err != nil {
		return fmt.Errorf("while granting %s to %s: %w", owner, login, err)
	}
	if _, err := c.admin.Exec(ctx, `ALTER ROLE `+ident(login)+` SET role = `+literal(owner)); err != nil {
		return fmt.Errorf("while setting the default role of %s: %w", login, err)
	}
	return c.SyncPooler(ctx)
}

// RetireLogin ends a login: its sessions are terminated and it leaves the
// pooler. When it owns the database it only loses LOGIN; otherwise its
// remaining objects go to owner and the role is dropped.
func (c *Cluster) RetireLogin(ctx context.Context, login, owner, db string) error {
	exists, err := c.RoleExists(ctx, login)
	if err != nil || !exists {
		if err == nil {
			err = c.SyncPooler(ctx)
		}
		return err
	}
	if login == owner {
		if _, err := c.admin.Exec(ctx, `ALTER ROLE `+ident(login)+` NOLOGIN`); err != nil {
			return fmt.Errorf("while disabling login %s: %w", login, err)
		}
	}
	if _, err := c.admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, login); err != nil {
		return fmt.Errorf("while terminating sessions of %s: %w", login, err)
	}
	if login != owner {
		dbExists, err := c.DatabaseExists(ctx, db)
		if err != nil {
			return err
		}
		if dbExists {
			// Inside the tenant database, as an agent of the tenant (it is a
			// member of owner and of login), never as the superuser.
			if err := c.handOver(ctx, db, login, owner); err != nil {
				return err
			}
		}
		if _, err := c.admin.Exec(ctx, `DROP ROLE IF EXISTS `+ident(login)); err != nil {
			return fmt.Errorf("while dropping login %s: %w", login, err)
		}
	}
	if err := c.SyncPooler(ctx); err != nil {
		return err
	}
	return c.reconnect(ctx, db)
}

// handOver gives owner the objects login owns in db and drops login's
// remaining privileges there. REASSIGN needs the rights of both roles at
// once, so it runs as a union agent; it is DDL that runs no tenant code.
func (c *Cluster) handOver(ctx context.Context, db, login, owner string) error {
	a, err := c.newUnionAgent(ctx, owner, login)
	if err != nil {
		return err
	}
	defer a.close(ctx) //nolint:errcheck
	conn, err := a.connect(ctx, db, "capydb-rotate")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `REASSIGN OWNED BY `+ident(login)+` TO `+ident(owner)+`; DROP OWNED BY `+ident(login)); err != nil {
		return fmt.Errorf("while handing objects of %s to %s: %w", login, owner, err)
	}
	return nil
}

// DropTenant removes a database (terminating its sessions) and its roles.
func (c *Cluster) DropTenant(ctx context.Context, db string, roles ...string) error {
	if db != "" {
		if _, err := c.admin.Exec(ctx, `DROP DATABASE IF EXISTS `+ident(db)+` WITH (FORCE)`); err != nil {
			return fmt.Errorf("while dropping database %s: %w", db, err)
		}
	}
	seen := map[string]bool{}
	for _, r := range roles {
		if r == "" || seen[r] {
			continue
		}
		seen[r] = true
		if _, err := c.admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, r); err != nil {
			return err
		}
		if _, err := c.admin.Exec(ctx, `DROP ROLE IF EXISTS `+ident(r)); err != nil {
			return fmt.Errorf("while dropping role %s: %w", r, err)
		}
	}
	return c.SyncPooler(ctx)
}

// DropTenantIfOwned drops a tenant's roles, and its database only when owner
// owns it, so an object CapyDB did not create is never touched.
func (c *Cluster) DropTenantIfOwned(ctx context.Context, db, owner string, otherRoles ...string) error {
	var actual string
	err := c.admin.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, db).Scan(&actual)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	// Logins that are members of the owner go first, the owner last.
	roles := append(otherRoles, owner)
	if err == nil && actual == owner {
		return c.DropTenant(ctx, db, roles...)
	}
	return c.DropTenant(ctx, "", roles...)
}

// RoleExists reports whether a role exists.
func (c *Cluster) RoleExists(ctx context.Context, role string) (bool, error) {
	var ok bool
	err := c.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&ok)
	return ok, err
}

// DatabaseExists reports whether a database exists.
func (c *Cluster) DatabaseExists(ctx context.Context, db string) (bool, error) {
	var ok bool
	err := c.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, db).Scan(&ok)
	return ok, err
}

// SyncPooler republishes roles and databases to the pooler, if there is one.
func (c *Cluster) SyncPooler(ctx context.Context) error {
	if c.pooler == nil {
		return nil
	}
	if err := c.pooler.SyncPooler(ctx); err != nil {
		return fmt.Errorf("while updating the pooler: %w", err)
	}
	return nil
}

// syncPoolerLater asks the pooler for a deferred sync, if there is one.
func (c *Cluster) syncPoolerLater() {
	if c.pooler != nil {
		c.pooler.SyncPoolerLater()
	}
}

func (c *Cluster) reconnect(ctx context.Context, db string) error {
	if c.pooler == nil || db == "" {
		return nil
	}
	if err := c.pooler.ReconnectPooler(ctx, db); err != nil {
		return fmt.Errorf("while recycling pooler connections: %w", err)
	}
	return nil
}

// ForeignObjectError means a name we generated is held by an object we did
// not create; retrying cannot help.
type ForeignObjectError struct{ Msg string }

func (e *ForeignObjectError) Error() string { return e.Msg }

func isDuplicate(err error) bool {
	var pgErr *pgconn.PgError
	// 42710 duplicate_object (role), 42P04 duplicate_database.
	return errors.As(err, &pgErr) && (pgErr.Code == "42710" || pgErr.Code == "42P04")
}

// DatabaseOID is the OID of database db: which incarnation of a name is
// meant (a swap or a re-creation gives the same name a new OID).
func (c *Cluster) DatabaseOID(ctx context.Context, db string) (uint32, error) {
	var oid uint32
	err := c.admin.QueryRow(ctx, `SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) $1`, db).Scan(&oid)
	return oid, err
}
