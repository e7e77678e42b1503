package localcluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/scram"
)

// pgBouncer looks tenant roles up with auth_query instead of reading them
// from its auth file, so a new project needs no RELOAD: pgBouncer logs in
// to poolerAuthDB as poolerAuthRole (the one role besides the admin that
// stays in the auth file) and calls poolerAuthFunc, a SECURITY DEFINER
// function that returns the SCRAM secret of tenant roles only. pgBouncer
// runs the query on every client login (it keeps no cache), so a password
// change is seen by the next login.
const (
	poolerAuthRole = "capydb_pooler_auth"
	poolerAuthDB   = "capydb_auth"
	poolerAuthFunc = "capydb_auth.lookup"
)

// poolerAuthQuery is pgbouncer.ini's auth_query.
const poolerAuthQuery = "SELECT uname, phash FROM " + poolerAuthFunc + "($1)"

// tenantRoleSQL is the body of poolerAuthFunc. A tenant role is a login
// with a SCRAM secret, none of the cluster-level attributes, not one of
// CapyDB's own (capydb_admin, maintenance agents, follow owners, warm
// entries, this lookup's role) nor a predefined pg_ role, not a member of
// any such role or of a role with those attributes, and it owns a
// database or is a member of a role that does (rotation's grace logins).
// Everything else gets no row: pgBouncer then refuses the login.
const tenantRoleSQL = `
	SELECT a.rolname::text, a.rolpassword::text
	FROM pg_catalog.pg_authid a
	WHERE a.rolname OPERATOR(pg_catalog.=) i_username
	  AND a.rolcanlogin AND NOT a.rolsuper AND NOT a.rolreplication AND NOT a.rolbypassrls
	  AND NOT a.rolcreaterole AND NOT a.rolcreatedb
	  AND a.rolpassword OPERATOR(pg_catalog.~) '^SCRAM-SHA-256\$'
	  AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil OPERATOR(pg_catalog.>) pg_catalog.now())
	  AND a.rolname OPERATOR(pg_catalog.!~) '^(capydb_|pg_)'
	  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_authid g
	    WHERE g.oid OPERATOR(pg_catalog.<>) a.oid
	      AND (g.rolsuper OR g.rolreplication OR g.rolbypassrls OR g.rolcreaterole OR g.rolcreatedb
	           OR g.rolname OPERATOR(pg_catalog.~) '^(capydb_|pg_)')
	      AND pg_catalog.pg_has_role(a.oid, g.oid, 'MEMBER'))
	  AND EXISTS (SELECT 1 FROM pg_catalog.pg_database d
	    WHERE NOT d.datistemplate
	      AND (d.datdba OPERATOR(pg_catalog.=) a.oid OR d.datdba IN
	           (SELECT m.roleid FROM pg_catalog.pg_auth_members m WHERE m.member OPERATOR(pg_catalog.=) a.oid)))`

// ensurePoolerAuth creates or repairs the auth role, its database and the
// lookup function; it runs on every start (conn: the admin on "postgres").
func (c *Cluster) ensurePoolerAuth(ctx context.Context, conn *pgx.Conn) error {
	pw, err := c.poolerAuthPassword()
	if err != nil {
		return err
	}
	// LOGIN, but pg_hba.conf refuses it over TCP (postgresHBA): only the
	// private unix socket, which only pgBouncer's OS user reaches, lets it in.
	role := pgx.Identifier{poolerAuthRole}.Sanitize()
	if err := EnsureLoginRole(ctx, conn, poolerAuthRole,
		"NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT CONNECTION LIMIT 20", pw); err != nil {
		return fmt.Errorf("while preparing the pooler auth role: %w", err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) $1)`,
		poolerAuthDB).Scan(&exists); err != nil {
		return err
	}
	db := pgx.Identifier{poolerAuthDB}.Sanitize()
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE DATABASE `+db+` TEMPLATE template0`); err != nil {
			return fmt.Errorf("while creating the pooler auth database: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, `REVOKE ALL ON DATABASE `+db+` FROM PUBLIC; GRANT CONNECT ON DATABASE `+db+` TO `+role); err != nil {
		return fmt.Errorf("while restricting the pooler auth database: %w", err)
	}
	aconn, err := c.connectAdmin(ctx, poolerAuthDB)
	if err != nil {
		return err
	}
	defer aconn.Close(context.WithoutCancel(ctx))
	_, err = aconn.Exec(ctx, `
		REVOKE ALL ON SCHEMA public FROM PUBLIC;
		CREATE SCHEMA IF NOT EXISTS capydb_auth;
		REVOKE ALL ON SCHEMA capydb_auth FROM PUBLIC;
		GRANT USAGE ON SCHEMA capydb_auth TO `+role+`;
		CREATE OR REPLACE FUNCTION `+poolerAuthFunc+`(i_username text, OUT uname text, OUT phash text)
		  RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER
		  SET search_path = pg_catalog, pg_temp
		  AS $fn$`+tenantRoleSQL+`$fn$;
		REVOKE ALL ON FUNCTION `+poolerAuthFunc+`(text) FROM PUBLIC;
		GRANT EXECUTE ON FUNCTION `+poolerAuthFunc+`(text) TO `+role)
	if err != nil {
		return fmt.Errorf("while creating the pooler auth function: %w", err)
	}
	return nil
}

// poolerAuthPassword is the auth role's password (pgBouncer needs it in
// plain text in its auth file: a SCRAM secret cannot log in). It is derived
// from the admin password, so a standby cluster, which adopts its primary's
// admin password and replicates its roles, derives the same one; knowing it
// does not reveal the admin password.
func (c *Cluster) poolerAuthPassword() (string, error) {
	if c.password == "" {
		return "", errors.New("the admin password is not loaded yet")
	}
	h := hmac.New(sha256.New, []byte(c.password))
	h.Write([]byte("capydb pgbouncer auth_query role " + poolerAuthRole))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)), nil
}

// hbaRejectPoolerAuth keeps the auth role off every TCP line, of postgres
// and of both pgBouncers: it logs in over postgres' private socket only.
func hbaRejectPoolerAuth(hba []byte) []byte {
	head := "# The pooler's auth_query role logs in over the private socket only.\n" +
		"host all " + poolerAuthRole + " 0.0.0.0/0 reject\n" +
		"host all " + poolerAuthRole + " ::/0 reject\n"
	return append([]byte(head), hba...)
}

// EnsureLoginRole creates role if missing and makes it a login with attrs
// and password. Only the SCRAM verifier is sent, and this session's utility
// statements stay out of pg_stat_statements (tenants may read it).
func EnsureLoginRole(ctx context.Context, conn *pgx.Conn, role, attrs, password string) error {
	verifier, err := scram.Verifier(password)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SET pg_stat_statements.track_utility = off`); err != nil {
		return err
	}
	lit := strings.ReplaceAll(role, "'", "''")
	ident := pgx.Identifier{role}.Sanitize()
	if _, err := conn.Exec(ctx, `DO $$ BEGIN
		   IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) '`+lit+`') THEN
		     CREATE ROLE `+ident+`;
		   END IF;
		 END $$`); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `ALTER ROLE `+ident+` LOGIN `+attrs+` PASSWORD '`+verifier+`'`)
	return err
}
