package dataplane_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capydb/capydb/internal/dataplane"
)

// plantSQL is run by a tenant in its own database. Every object calls
// public.esc(), which records who ran it and, when that is a superuser,
// undoes any SET ROLE and makes the tenant superuser. public.quote_ident(name)
// and friends shadow the pg_catalog functions our catalog queries call (an
// exact type match beats pg_catalog's text versions), and the database's
// search_path puts public first for every later session.
const plantSQL = `
CREATE TABLE public.seen (session_user_name text, current_user_name text, what text);
CREATE FUNCTION public.esc(what text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
BEGIN
	-- Not in the verification's scratch copy: its row counts must match.
	IF current_database() NOT LIKE '%\_v' THEN
		INSERT INTO public.seen VALUES (session_user, current_user, what);
	END IF;
	IF (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) THEN
		RESET ROLE;
		EXECUTE format('ALTER ROLE %I SUPERUSER', '@TENANT@');
	END IF;
	RETURN true;
EXCEPTION WHEN insufficient_privilege THEN
	RETURN true;
END $f$;
CREATE FUNCTION public.esc_imm(v int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN PERFORM public.esc('index'); RETURN v; END $f$;
CREATE FUNCTION public.quote_ident(n name) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.esc('quote_ident'); RETURN pg_catalog.quote_ident(n::text); END $f$;
CREATE FUNCTION public.pg_table_size(o oid) RETURNS bigint LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.esc('pg_table_size'); RETURN pg_catalog.pg_table_size(o::regclass); END $f$;
CREATE FUNCTION public.trg() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN PERFORM public.esc('trigger'); RETURN NEW; END $f$;
CREATE DOMAIN public.checked AS int CHECK (public.esc('domain'));
CREATE TABLE public.victim (
	a int CHECK (public.esc('check')),
	b int DEFAULT 1,
	c public.checked,
	d boolean DEFAULT public.esc('default')
);
CREATE INDEX victim_expr ON public.victim ((public.esc_imm(a)));
CREATE TRIGGER victim_trg BEFORE INSERT ON public.victim FOR EACH ROW EXECUTE FUNCTION public.trg();
CREATE MATERIALIZED VIEW public.mv AS SELECT a FROM public.victim WHERE public.esc('matview');
INSERT INTO public.victim (a, c) SELECT g, g FROM generate_series(1, 20) g;
REFRESH MATERIALIZED VIEW public.mv;
DELETE FROM public.seen;
ALTER DATABASE "@DB@" SET search_path = public, pg_catalog;
`

// TestTenantCodeNeverRunsPrivileged runs every dataplane operation that
// works inside a tenant database against planted code and checks the code
// only ever ran as tenant roles and the tenant gained nothing.
func TestTenantCodeNeverRunsPrivileged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	src := e.tenant("iso")
	plant := strings.NewReplacer("@TENANT@", src.role, "@DB@", src.db).Replace(plantSQL)
	conn := e.mustConnectAs(src.role, src.password, src.db)
	exec(t, conn, plant)
	conn.Close(ctx) // a template copy needs the source idle

	// Databases whose seen table to read, and the tenant role each belongs to.
	check := map[string]string{src.db: src.role}
	// A clone of the source into a new preview database by one strategy.
	cloneAs := func(strategy string) func() error {
		return func() error {
			pv := e.previewRole()
			check[pv.db] = pv.role
			_, err := e.dp.BuildDatabase(ctx, dataplane.BuildParams{Source: src.db, Target: pv.db, Owner: pv.role,
				Strategy: strategy})
			return err
		}
	}
	steps := []struct {
		name string
		run  func() error
	}{
		{"backup dump and verification", func() error {
			var buf bytes.Buffer
			counts, err := e.dp.Dump(ctx, dataplane.DumpParams{Database: src.db, Out: &buf})
			if err != nil {
				return err
			}
			file := filepath.Join(t.TempDir(), "a.dump")
			if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
				return err
			}
			return e.dp.VerifyArchive(ctx, file, src.db+"_v", src.role, counts, nil)
		}},
		{"snapshot-copy clone", cloneAs(dataplane.StrategySnapshotCopy)},
		{"template clone", cloneAs(dataplane.StrategyTemplate)},
		{"row counts", func() error { _, err := e.dp.CountRows(ctx, src.db); return err }},
		{"retire a login", func() error {
			login := src.role + "_l2"
			if err := e.dp.CreateMemberLogin(ctx, login, src.role, "pw-"+src.password, 5, "0", "60s"); err != nil {
				return err
			}
			return e.dp.RetireLogin(ctx, login, src.role, src.db)
		}},
	}
	admin := e.admin("postgres")
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Errorf("%s: %v", st.name, err)
		}
		var super, createrole, createdb, bypass bool
		var memberships int
		if err := admin.QueryRow(ctx, `SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls,
			(SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)
			FROM pg_roles r WHERE rolname = $1`, src.role).Scan(&super, &createrole, &createdb, &bypass, &memberships); err != nil {
			t.Fatal(err)
		}
		if super || createrole || createdb || bypass || memberships != 0 {
			t.Fatalf("after %s the tenant role has super=%v createrole=%v createdb=%v bypassrls=%v memberships=%d",
				st.name, super, createrole, createdb, bypass, memberships)
		}
	}
	// Planted code ran (the clones and the verification evaluate it) and
	// every run was as the database's tenant, or a CapyDB agent acting as it.
	ran := 0
	for db, role := range check {
		rows, err := e.admin(db).Query(ctx, `SELECT session_user_name, current_user_name, what FROM public.seen`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var su, cu, what string
			if err := rows.Scan(&su, &cu, &what); err != nil {
				t.Fatal(err)
			}
			ran++
			if cu != role || !(su == role || dataplane.IsAgentRole(su)) {
				t.Errorf("in %s, planted %s ran as session_user %s, current_user %s", db, what, su, cu)
			}
		}
		rows.Close()
	}
	if ran == 0 {
		t.Error("no planted code ran: the test plants nothing the operations reach")
	}
	var agents int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid
		WHERE r.rolname LIKE 'capydb\_agent\_%' AND m.roleid = $1::regrole`, src.role).Scan(&agents); err != nil {
		t.Fatal(err)
	}
	if agents != 0 {
		t.Errorf("%d agent roles outlived their operations", agents)
	}
}

// TestPasswordStatementsStayOutOfStatistics: role statements carry SCRAM
// verifiers; pg_stat_statements (readable by any tenant that enables it)
// must not keep them.
func TestPasswordStatementsStayOutOfStatistics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.admin("postgres")
	exec(t, admin, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
	tn := e.tenant("pss")
	if err := e.dp.SetPassword(ctx, tn.role, "another-"+tn.password, tn.db); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%SCRAM-SHA-256$%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("pg_stat_statements holds %d statements with SCRAM verifiers", n)
	}
}
