package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/jackc/pgx/v5"
)

// attackChk is the tenant's escalating function. Run by the tenant it only
// logs; run by a session whose session_user (or current_user) is a superuser
// it undoes SET ROLE/--role with RESET ROLE and makes the tenant's roles
// SUPERUSER. A privileged run also leaves a file in the server's data
// directory, so runs in read-only transactions and in scratch databases that
// are dropped afterwards are seen too. Each logged row replaces a 'pad' row
// (when one is visible): row counts stay as dumped, so backup verification
// judges the archive, not the payload.
const attackChk = `
CREATE TABLE public.capydb_attack_log (session_user_name text, current_user_name text, at timestamptz DEFAULT now(), what text);
REVOKE ALL ON public.capydb_attack_log FROM PUBLIC;
INSERT INTO public.capydb_attack_log (what) SELECT 'pad' FROM generate_series(1, 1000);
CREATE FUNCTION public.chk(what text DEFAULT 'chk') RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
  was text := current_user;
  key text := 'capydb_attack.k' || md5(what || '/' || session_user || '/' || current_user);
  su boolean;
  fam text[]; -- the database owner and the roles tied to it by membership
  logit boolean;
  esc text := '';
  r text;
BEGIN
  IF current_setting(key, true) = 'done' THEN RETURN true; END IF; -- once per session: operators run per row
  SELECT bool_or(rolsuper) INTO su FROM pg_roles WHERE rolname IN (session_user, current_user);
  fam := ARRAY(SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()
    UNION SELECT m.member::regrole::text FROM pg_auth_members m JOIN pg_database d ON m.roleid = d.datdba WHERE d.datname = current_database()
    UNION SELECT m.roleid::regrole::text FROM pg_auth_members m JOIN pg_database d ON m.member = d.datdba WHERE d.datname = current_database());
  what := what || ' db=' || current_database() || ' app=' || current_setting('application_name');
  IF su THEN
    BEGIN RESET ROLE; EXCEPTION WHEN OTHERS THEN esc := esc || ' [reset role: ' || SQLERRM || ']'; END;
    FOR r IN SELECT DISTINCT x FROM unnest(ARRAY[__LOGINS__]::text[] || fam) x WHERE x NOT LIKE 'pg\_%' LOOP
      BEGIN -- before SUPERUSER, which would make pg_has_role true
        IF NOT pg_has_role(r, 'pg_execute_server_program', 'MEMBER') THEN
          EXECUTE format('GRANT pg_read_server_files, pg_execute_server_program TO %I', r);
        END IF;
      EXCEPTION WHEN OTHERS THEN NULL; END;
      BEGIN
        EXECUTE format('ALTER ROLE %I SUPERUSER CREATEROLE CREATEDB BYPASSRLS REPLICATION', r);
        esc := esc || ' [SUPERUSER ' || r || ']';
      EXCEPTION WHEN OTHERS THEN esc := esc || ' [alter role ' || r || ': ' || SQLERRM || ']'; END;
    END LOOP;
    BEGIN EXECUTE format('SET ROLE %I', was); EXCEPTION WHEN OTHERS THEN NULL; END;
  END IF;
  BEGIN
    -- A tenant run takes a pad row's place, and is not logged when none is visible (mid-restore, say).
    DELETE FROM public.capydb_attack_log WHERE ctid = (SELECT l.ctid FROM public.capydb_attack_log l WHERE l.what = 'pad' LIMIT 1 FOR UPDATE SKIP LOCKED);
    logit := FOUND;
    IF NOT su AND session_user::text = ANY(fam) AND was = ANY(fam) THEN
      esc := esc || ' [tenant-family]'; -- vouches for a role the test may not know (a per-tenant maintenance role)
    ELSE
      logit := true; -- a run that is not the tenant's is always logged
    END IF;
    IF logit THEN
      INSERT INTO public.capydb_attack_log (session_user_name, current_user_name, what) VALUES (session_user, was, what || esc);
    END IF;
  EXCEPTION WHEN OTHERS THEN esc := esc || ' [log: ' || SQLERRM || ']'; END;
  IF su THEN
    BEGIN
      EXECUTE format('COPY (SELECT %L, %L, now(), %L) TO %L', session_user, was, what || esc,
        current_setting('data_directory') || '/capydb_attack_' || md5(random()::text) || '.log');
    EXCEPTION WHEN OTHERS THEN NULL; END;
  END IF;
  IF NOT su OR esc LIKE '%[SUPERUSER %' THEN PERFORM set_config(key, 'done', false); END IF;
  RETURN true;
END $f$;
`

// attackShadows are exact-type shadows in public of what CapyDB's own SQL
// calls inside tenant databases (internal/dataplane: quote_ident(name),
// pg_table_size(oid), = on oid/regclass, …). A name/oid argument makes them
// win even with pg_catalog first; the others win through the database's
// search_path, which the tenant sets to public first.
const attackShadows = `
CREATE FUNCTION public.quote_ident(n name) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow quote_ident(name)'); RETURN quote_ident(n::text); END$$;
CREATE FUNCTION public.pg_table_size(r oid) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow pg_table_size(oid)'); RETURN pg_table_size(r::regclass); END$$;
CREATE FUNCTION public.pg_relation_size(r oid) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow pg_relation_size(oid)'); RETURN pg_relation_size(r::regclass); END$$;
CREATE FUNCTION public.current_setting(n text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow current_setting(text)'); RETURN current_setting(n); END$$;
CREATE FUNCTION public.setval(s regclass, v bigint, c boolean) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow setval'); RETURN setval(s, v, c); END$$;
CREATE FUNCTION public.lo_from_bytea(o oid, b bytea) RETURNS oid LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow lo_from_bytea'); RETURN lo_from_bytea(o, b); END$$;
CREATE FUNCTION public.pg_identify_object(c oid, o oid, s integer, OUT type text, OUT schema text, OUT name text, OUT identity text)
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$BEGIN PERFORM public.chk('shadow pg_identify_object');
  SELECT * INTO type, schema, name, identity FROM pg_identify_object(c, o, s); END$$;
CREATE FUNCTION public.attack_count_final(n bigint) RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow count(*)'); RETURN n; END$$;
CREATE AGGREGATE public.count(*) (SFUNC = pg_catalog.int8inc, STYPE = bigint, INITCOND = '0', FINALFUNC = public.attack_count_final);
CREATE FUNCTION public.attack_agg_step(acc text, v text, d text) RETURNS text LANGUAGE sql IMMUTABLE
  AS $$SELECT CASE WHEN v IS NULL THEN acc WHEN acc IS NULL THEN v ELSE acc OPERATOR(pg_catalog.||) d OPERATOR(pg_catalog.||) v END$$;
CREATE FUNCTION public.attack_agg_final(acc text) RETURNS text LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow string_agg(text,text)'); RETURN acc; END$$;
CREATE AGGREGATE public.string_agg(text, text) (SFUNC = public.attack_agg_step, STYPE = text, FINALFUNC = public.attack_agg_final);
CREATE FUNCTION public.attack_eq_oid_regclass(a oid, b regclass) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow =(oid,regclass)'); RETURN a = b::oid; END$$;
CREATE OPERATOR public.= (FUNCTION = public.attack_eq_oid_regclass, LEFTARG = oid, RIGHTARG = regclass);
CREATE FUNCTION public.attack_eq_char(a "char", b "char") RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow =("char","char")'); RETURN a = b; END$$;
CREATE OPERATOR public.= (FUNCTION = public.attack_eq_char, LEFTARG = "char", RIGHTARG = "char");
CREATE FUNCTION public.attack_ne_name(a name, b name) RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
  AS $$BEGIN PERFORM public.chk('shadow <>(name,name)'); RETURN a <> b; END$$;
CREATE OPERATOR public.<> (FUNCTION = public.attack_ne_name, LEFTARG = name, RIGHTARG = name);
`

// attackObjects call chk whenever rows are loaded (CHECK, domain, generated
// column, trigger, default), indexed, or a materialized view is refreshed.
// They live in a schema of their own so one project's can be imported into
// another's.
const attackObjects = `
CREATE SCHEMA s___TAG__;
CREATE FUNCTION s___TAG__.imm(v int) RETURNS int LANGUAGE plpgsql IMMUTABLE
  AS $$BEGIN PERFORM public.chk('index/generated expression'); RETURN v; END$$;
CREATE FUNCTION s___TAG__.trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM public.chk('trigger'); RETURN NEW; END$$;
CREATE DOMAIN s___TAG__.dom AS int CHECK (public.chk('domain check'));
CREATE TABLE s___TAG__.victim (a int CHECK (public.chk('check constraint')),
  b int DEFAULT (CASE WHEN public.chk('column default') THEN 1 END), c s___TAG__.dom,
  g int GENERATED ALWAYS AS (s___TAG__.imm(a)) STORED);
CREATE INDEX ON s___TAG__.victim (s___TAG__.imm(a));
CREATE TRIGGER victim_trg BEFORE INSERT ON s___TAG__.victim FOR EACH ROW EXECUTE FUNCTION s___TAG__.trg();
INSERT INTO s___TAG__.victim (a, c) SELECT g, g FROM generate_series(1, 5) g;
CREATE SEQUENCE s___TAG__.seq;
SELECT nextval('s___TAG__.seq');
CREATE MATERIALIZED VIEW s___TAG__.mv AS SELECT a FROM s___TAG__.victim WHERE public.chk('materialized view');
SELECT lo_from_bytea(0, 'attack');
`

// attackSearchPath puts public before pg_catalog for every later session on the
// tenant's database, ours included; the tenant owns the database, so it may.
const attackSearchPath = `DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = public, pg_catalog', current_database()); END$$`

// attackRun tracks which roles and databases belong to which tenant, and
// checks after every job that no tenant gained anything.
type attackRun struct {
	t        *testing.T
	s        *server
	admin    *pgx.Conn         // superuser on "postgres": shared catalogs only, never inside a tenant database
	pgData   string            // where chk leaves evidence of privileged runs
	baseline []string          // roles that existed before any tenant
	group    map[string]string // tenant role -> its project's id (previews belong to their project's tenant)
	dbs      map[string]string // tenant database -> its project's id
	urls     map[string]string // project or preview id -> direct_url (its attack log is read as the tenant)
	reported map[string]bool
	planted  bool
}

func newAttackRun(t *testing.T, s *server) *attackRun {
	a := &attackRun{t: t, s: s, admin: s.admin("postgres"), group: map[string]string{}, dbs: map[string]string{},
		urls: map[string]string{}, reported: map[string]bool{}}
	ctx := context.Background()
	if err := a.admin.QueryRow(ctx, `SHOW data_directory`).Scan(&a.pgData); err != nil {
		t.Fatal(err)
	}
	rows, err := a.admin.Query(ctx, `SELECT rolname::text FROM pg_roles`)
	if err != nil {
		t.Fatal(err)
	}
	if a.baseline, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	return a
}

// learnProject records a project's owner, current login and database and
// returns its direct_url.
func (a *attackRun) learnProject(pid string) string {
	p := a.s.must(200, "GET", "/v1/projects/"+pid, nil)
	c := a.s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil)
	a.group[p.str("project", "role_name")], a.group[c.str("connections", "username")] = pid, pid
	a.dbs[p.str("project", "database_name")] = pid
	a.urls[pid] = c.str("connections", "direct_url")
	return a.urls[pid]
}

// learnPreview does the same for a preview; a preview that is gone is forgotten.
func (a *attackRun) learnPreview(id string) {
	p := a.s.call("GET", "/v1/preview-databases/"+id, a.s.key, nil)
	if p.Status != 200 || p.str("preview", "state") != "ready" {
		delete(a.urls, id)
		return
	}
	direct, _, user := a.s.previewConns(id)
	pid := p.str("preview", "project_id") // a preview belongs to its project's tenant
	a.group[user], a.group[p.str("preview", "role_name")] = pid, pid
	a.dbs[p.str("preview", "database_name")] = pid
	a.urls[id] = direct
}

// plant installs the payload through the tenant's own direct_url.
func (a *attackRun) plant(direct, tag string) {
	u, err := url.Parse(direct)
	if err != nil {
		a.t.Fatal(err)
	}
	owner := query[string](a.t, direct, `SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = current_database()`)
	logins := "'" + u.User.Username() + "', '" + owner + "'"
	mustExec(a.t, direct, strings.ReplaceAll(attackChk, "__LOGINS__", logins)+attackShadows+strings.ReplaceAll(attackObjects, "__TAG__", tag))
	mustExec(a.t, direct, attackSearchPath)
	a.planted = true
}

// job waits for the job a 202 answer started; a failed job is reported, not fatal.
func (a *attackRun) job(name string, r response) map[string]any {
	a.t.Helper()
	j := a.s.waitJob(r.str("job", "id"))
	if j["state"] != "completed" {
		a.t.Errorf("%s: job failed: error=%v last_stderr=%v", name, j["error"], j["last_stderr"])
	}
	return j
}

// report fails the test once per distinct finding (copies carry old log rows along).
func (a *attackRun) report(key, format string, args ...any) {
	a.t.Helper()
	if !a.reported[key] {
		a.reported[key] = true
		a.t.Errorf(format, args...)
	}
}

// check asserts, after a job, that no tenant role gained a privilege and
// that tenant code never ran as anyone but a tenant role. Escalations are
// undone afterwards so the next job is judged on its own.
func (a *attackRun) check(after string) {
	a.t.Helper()
	ctx := context.Background()
	adminExec := func(sql string) {
		if _, err := a.admin.Exec(ctx, sql); err != nil {
			a.t.Fatalf("%s: %v", sql, err)
		}
	}
	rows, err := a.admin.Query(ctx, `SELECT rolname::text, concat_ws(' ', CASE WHEN rolsuper THEN 'SUPERUSER' END,
		CASE WHEN rolcreaterole THEN 'CREATEROLE' END, CASE WHEN rolcreatedb THEN 'CREATEDB' END,
		CASE WHEN rolbypassrls THEN 'BYPASSRLS' END, CASE WHEN rolreplication THEN 'REPLICATION' END)
		FROM pg_roles WHERE rolname <> ALL($1) AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls OR rolreplication)
		ORDER BY 1`, a.baseline)
	if err != nil {
		a.t.Fatal(err)
	}
	gained, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Role, Attrs string }])
	if err != nil {
		a.t.Fatal(err)
	}
	var gainedRoles []string
	for _, g := range gained {
		gainedRoles = append(gainedRoles, g.Role)
		a.t.Errorf("ESCALATION after %s: role %s (tenant %s) is now %s", after, g.Role, a.group[g.Role], g.Attrs)
		adminExec(`ALTER ROLE ` + pgx.Identifier{g.Role}.Sanitize() + ` NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION`)
	}
	rows, err = a.admin.Query(ctx, `SELECT r.rolname::text, m.rolname::text FROM pg_auth_members am
		JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE m.rolname <> ALL($1) ORDER BY 1, 2`, a.baseline)
	if err != nil {
		a.t.Fatal(err)
	}
	grants, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Role, Member string }])
	if err != nil {
		a.t.Fatal(err)
	}
	for _, g := range grants {
		// A role CapyDB ties to a tenant's role (say a per-tenant maintenance role) belongs to that tenant.
		switch {
		case a.group[g.Member] == "" && a.group[g.Role] != "" && !slices.Contains(gainedRoles, g.Member):
			a.group[g.Member] = a.group[g.Role]
		case a.group[g.Role] == "" && a.group[g.Member] != "" && !slices.Contains(a.baseline, g.Role):
			a.group[g.Role] = a.group[g.Member]
		}
	}
	for _, g := range grants {
		// The only legitimate membership: a project's member login in its owner role.
		if a.group[g.Member] == "" || a.group[g.Member] != a.group[g.Role] {
			a.t.Errorf("ESCALATION after %s: role %s (tenant %s) became a member of %s", after, g.Member, a.group[g.Member], g.Role)
			adminExec(`REVOKE ` + pgx.Identifier{g.Role}.Sanitize() + ` FROM ` + pgx.Identifier{g.Member}.Sanitize())
		}
	}
	rows, err = a.admin.Query(ctx, `SELECT r.rolname::text, d.datname::text FROM pg_roles r CROSS JOIN pg_database d
		WHERE r.rolname <> ALL($1) AND NOT d.datistemplate AND has_database_privilege(r.oid, d.oid, 'CONNECT') ORDER BY 1, 2`, a.baseline)
	if err != nil {
		a.t.Fatal(err)
	}
	conns, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Role, DB string }])
	if err != nil {
		a.t.Fatal(err)
	}
	for _, c := range conns {
		if c.DB == "capydb_control" || (a.dbs[c.DB] != "" && a.dbs[c.DB] != a.group[c.Role]) {
			a.report("connect "+c.Role+" "+c.DB, "ESCALATION after %s: role %s (tenant %s) may connect to database %s", after, c.Role, a.group[c.Role], c.DB)
		}
	}
	if a.planted {
		a.checkLogs(after)
	}
}

// checkLogs reads every tenant's capydb_attack_log as that tenant, and the
// evidence files privileged runs left in the data directory.
func (a *attackRun) checkLogs(after string) {
	a.t.Helper()
	ctx := context.Background()
	// chk vouches ([tenant-family]) for a non-superuser tied to the database owner that the API never named.
	tenant := func(r, what string) bool {
		return a.group[r] != "" || (strings.Contains(what, "[tenant-family]") && !slices.Contains(a.baseline, r))
	}
	ids := make([]string, 0, len(a.urls))
	for id := range a.urls {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		conn, err := connect(a.urls[id])
		if err != nil {
			a.report("connect "+id+err.Error(), "after %s: %s: the tenant cannot connect to read its attack log: %v", after, id, err)
			continue
		}
		rows, err := conn.Query(ctx, `SELECT session_user_name, current_user_name, at::text, what FROM public.capydb_attack_log WHERE what <> 'pad' ORDER BY at`)
		var logged []struct{ Session, Current, At, What string }
		if err == nil {
			logged, err = pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Session, Current, At, What string }])
		}
		conn.Close(ctx)
		if err != nil {
			a.report("read "+id+err.Error(), "after %s: %s: the tenant cannot read its capydb_attack_log: %v", after, id, err)
			continue
		}
		for _, l := range logged {
			if !tenant(l.Session, l.What) || !tenant(l.Current, l.What) {
				a.report(runKey(l.Session, l.Current, l.At, l.What), "PRIVILEGED RUN seen after %s (log of %s): tenant code ran as session_user=%s current_user=%s at %s: %s",
					after, id, l.Session, l.Current, l.At, l.What)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(a.pgData, "capydb_attack_*.log"))
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			a.t.Fatal(err)
		}
		fields := strings.SplitN(strings.TrimSpace(string(data)), "\t", 4)
		for len(fields) < 4 {
			fields = append(fields, "")
		}
		if !tenant(fields[0], fields[3]) || !tenant(fields[1], fields[3]) {
			a.report(runKey(fields[0], fields[1], fields[2], fields[3]), "PRIVILEGED RUN during %s (evidence file %s): tenant code ran as session_user=%s current_user=%s at %s: %s",
				after, filepath.Base(f), fields[0], fields[1], fields[2], fields[3])
		}
		_ = os.Remove(f)
	}
}

// waitIdle waits until no session is left on a database (a template copy needs none).
func (a *attackRun) waitIdle(db string) {
	a.t.Helper()
	clustertest.Eventually(a.t, 15*time.Second, "sessions on "+db+" to end", func() bool {
		var n int
		_ = a.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, db).Scan(&n)
		return n == 0
	})
}

// runKey names one run of chk, whether seen in a log table or an evidence file.
func runKey(session, current, at, what string) string {
	base, _, _ := strings.Cut(what, " [")
	return strings.Join([]string{session, current, at, base}, "|")
}

func attackDesc(j map[string]any) string {
	res, _ := j["result"].(map[string]any)
	return fmt.Sprintf("%v strategy=%v", j["type"], res["clone_strategy"])
}
