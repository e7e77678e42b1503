package e2e

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

const followSourceSchema = `CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL, balance int NOT NULL DEFAULT 0);
CREATE TABLE events (id serial PRIMARY KEY, account_id bigint REFERENCES accounts, payload text);
INSERT INTO accounts (name, balance) SELECT 'a' || g, g FROM generate_series(1, 2000) g;
INSERT INTO events (account_id, payload) SELECT g, 'seed ' || g FROM generate_series(1, 2000) g`

// tableSums is each table's row count and an order-independent checksum.
func tableSums(t *testing.T, conn *pgx.Conn) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tbl := range []string{"accounts", "events"} {
		var v string
		if err := conn.QueryRow(context.Background(), `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t.id)), '') FROM `+tbl+` t`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		out[tbl] = v
	}
	return out
}

func followStatus(t *testing.T, s *server, pid string) map[string]any {
	t.Helper()
	job := s.waitJob(s.must(202, "POST", "/v1/projects/"+pid+"/imports/follow/status", nil).str("job", "id"))
	if job["state"] != "completed" {
		t.Fatalf("status job: %v", job)
	}
	res, _ := job["result"].(map[string]any)
	return res
}

// TestFollowImport (#60–63): a follow import from a second real cluster
// (wal_level=logical) while a writer keeps writing on the source; rows
// written after the start reach the project, the status reports the stream
// and its lag, the cutover waits for it, brings sequences forward and ends
// the stream: afterwards the source's writes no longer flow, every table's
// checksum matches and the project's sequences continue. Tenant code that
// fires during apply runs without superuser rights and cannot re-point the
// subscription. Measures the cutover window.
func TestFollowImport(t *testing.T) {
	t.Parallel()
	src := clustertest.LogicalSource(t)
	ctx := context.Background()
	srcConn, err := pgx.Connect(ctx, src.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer srcConn.Close(ctx)
	for _, stmt := range strings.Split(followSourceSchema, ";\n") {
		if _, err := srcConn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	s := startServer(t, "", 0, 0, "--imports-allow-private")
	p := s.createProject(map[string]any{"name": "follower", "environment": "non_production"})
	pid := p["id"].(string)
	purl := projectURL(s, pid)

	// Nothing to report, cut over or abort yet.
	if st := followStatus(t, s, pid); st["unit_active"] != "" || st["result"] != "" || st["lag_bytes"] != nil {
		t.Fatalf("status without a follow: %v", st)
	}
	s.must(409, "POST", "/v1/projects/"+pid+"/imports/follow/cutover", map[string]any{"confirm": true})
	s.must(409, "POST", "/v1/projects/"+pid+"/imports/follow/abort", nil)

	// A writer on the source during the start and the stream.
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w, err := pgx.Connect(ctx, src.URL)
		if err != nil {
			t.Error(err)
			return
		}
		defer w.Close(ctx)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w.Exec(ctx, `WITH a AS (INSERT INTO accounts (name, balance) VALUES ('w' || $1::int, $1) RETURNING id)
				INSERT INTO events (account_id, payload) SELECT id, 'write ' || $1::int FROM a`, i); err != nil {
				t.Error(err)
				return
			}
			if _, err := w.Exec(ctx, `UPDATE accounts SET balance = balance + 1 WHERE id = $1`, 1+i%2000); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	r := s.must(202, "POST", "/v1/projects/"+pid+"/imports/follow", map[string]any{"confirm": true, "source_url": src.URL})
	if r.str("job", "type") != "project.import_follow_start" {
		t.Fatalf("job: %s", r.Raw)
	}
	s.must(409, "POST", "/v1/projects/"+pid+"/imports/follow", map[string]any{"confirm": true, "source_url": src.URL})
	job := s.waitJob(r.str("job", "id"))
	if job["state"] != "completed" {
		t.Fatalf("start: %v", job)
	}
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "importing" {
		t.Fatalf("project state %s while following", st)
	}

	// Tenant code fired by the apply worker: it records who it runs as and
	// tries to become superuser and to re-point the subscription.
	execOn(t, purl, `CREATE TABLE attack_log (who text, what text);
CREATE FUNCTION grab() RETURNS trigger LANGUAGE plpgsql AS $f$
DECLARE sub text;
BEGIN
  INSERT INTO public.attack_log VALUES (current_user, 'ran');
  BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', current_user); INSERT INTO public.attack_log VALUES (current_user, 'superuser');
  EXCEPTION WHEN others THEN INSERT INTO public.attack_log VALUES (current_user, 'refused: ' || SQLERRM); END;
  SELECT subname INTO sub FROM pg_catalog.pg_subscription LIMIT 1;
  BEGIN EXECUTE pg_catalog.format('ALTER SUBSCRIPTION %I CONNECTION %L', sub, 'host=10.0.0.1 dbname=x'); INSERT INTO public.attack_log VALUES (current_user, 'repointed');
  EXCEPTION WHEN others THEN INSERT INTO public.attack_log VALUES (current_user, 'refused: ' || SQLERRM); END;
  RETURN NEW;
END $f$;
CREATE TRIGGER grab BEFORE INSERT ON events FOR EACH ROW WHEN (NEW.payload = 'attack') EXECUTE FUNCTION public.grab();
ALTER TABLE events ENABLE ALWAYS TRIGGER grab;`)
	if _, err := srcConn.Exec(ctx, `INSERT INTO events (account_id, payload) VALUES (1, 'attack')`); err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("sh", "-c", "grep -h -i 'logical replication\\|ERROR' "+s.dataDir+"/pg/log/*.json | tail -20").CombinedOutput()
			t.Logf("postgres log:\n%s", out)
		}
	})
	// Rows written after the start reach the project.
	mark := written.Load() + 5
	clustertest.Eventually(t, 60*time.Second, "rows written during the follow to arrive", func() bool {
		return written.Load() > mark && query[int64](t, purl, `SELECT count(*) FROM events WHERE payload = 'write `+strconv.FormatInt(mark, 10)+`'`) == 1
	})
	var st map[string]any
	clustertest.Eventually(t, 60*time.Second, "every table synced and the stream active", func() bool {
		st = followStatus(t, s, pid)
		tables, _ := st["tables"].([]any) // accounts and events (attack_log exists only here)
		return len(tables) == 2 && allReady(tables) && st["unit_active"] == "active" && st["lag_bytes"] != nil
	})
	if lag, ok := st["lag_bytes"].(float64); !ok || lag < 0 {
		t.Fatalf("lag_bytes %v", st["lag_bytes"])
	}
	if sent, _ := st["sentinel"].(map[string]any); sent == nil || sent["source_lsn"] == "" || sent["received_lsn"] == "" {
		t.Fatalf("sentinel %v", st["sentinel"])
	}
	t.Logf("status while writing: lag_bytes=%v sentinel=%v", st["lag_bytes"], st["sentinel"])

	// The project is importing: backups wait for the cutover.
	s.must(409, "POST", "/v1/projects/"+pid+"/backups", map[string]any{"label": "during follow"})

	clustertest.Eventually(t, 30*time.Second, "the attack trigger to fire", func() bool {
		return query[int64](t, purl, `SELECT count(*) FROM attack_log`) >= 3
	})
	conn, err := connect(purl)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := conn.Query(ctx, `SELECT who, what FROM attack_log ORDER BY what`)
	log, _ := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Who, What string }])
	conn.Close(ctx)
	for _, l := range log {
		if !strings.HasPrefix(l.Who, "capydb_follow_") || l.What == "superuser" || l.What == "repointed" {
			t.Errorf("apply-time tenant code: %v", log)
		}
	}
	if !strings.Contains(strings.Join(func() []string {
		var w []string
		for _, l := range log {
			w = append(w, l.What)
		}
		return w
	}(), "|"), "managed by CapyDB") {
		t.Errorf("the subscription guard did not refuse: %v", log)
	}
	var super bool
	if err := s.admin("postgres").QueryRow(ctx, `SELECT bool_or(rolsuper) FROM pg_roles WHERE rolname LIKE 'capydb\_follow\_%' OR rolname = $1`,
		p["role_name"]).Scan(&super); err != nil || super {
		t.Fatalf("a tenant or follow role is superuser (%v)", err)
	}

	// Cutover: stop the writer, then the window runs until the project
	// takes a write with the source's next id.
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	var srcMax int64
	if err := srcConn.QueryRow(ctx, `SELECT max(id) FROM accounts`).Scan(&srcMax); err != nil {
		t.Fatal(err)
	}
	s.must(400, "POST", "/v1/projects/"+pid+"/imports/follow/cutover", map[string]any{"confirm": false})
	began := time.Now()
	cj := s.waitJob(s.must(202, "POST", "/v1/projects/"+pid+"/imports/follow/cutover", map[string]any{"confirm": true}).str("job", "id"))
	if cj["state"] != "completed" {
		t.Fatalf("cutover: %v", cj)
	}
	newID := query[int64](t, purl, `INSERT INTO accounts (name) VALUES ('after cutover') RETURNING id`)
	window := time.Since(began)
	t.Logf("cutover window (writers stopped on the source → first write on the project): %s; job result %v", window, cj["result"])
	if newID != srcMax+1 {
		t.Errorf("the project's sequence continues at %d, want %d", newID, srcMax+1)
	}
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "ready" {
		t.Fatalf("project state %s after cutover", st)
	}
	if res, _ := cj["result"].(map[string]any); res == nil || res["sequences_synced"] != float64(2) {
		t.Errorf("cutover result %v", cj["result"])
	}

	// Every table matches the source (before the project's own write).
	pconn, err := connect(purl)
	if err != nil {
		t.Fatal(err)
	}
	defer pconn.Close(ctx)
	if _, err := pconn.Exec(ctx, `DELETE FROM accounts WHERE id = $1`, newID); err != nil {
		t.Fatal(err)
	}
	want, got := tableSums(t, srcConn), tableSums(t, pconn)
	for k := range want {
		if want[k] != got[k] {
			t.Errorf("table %s: source %s, project %s", k, want[k], got[k])
		}
	}
	t.Logf("rows written on the source during the follow: %d; tables %v", written.Load(), got)

	// The stream has ended: new source writes stay there; nothing is left
	// on either side.
	if _, err := srcConn.Exec(ctx, `INSERT INTO events (account_id, payload) VALUES (1, 'after cutover')`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := query[int64](t, purl, `SELECT count(*) FROM events WHERE payload = 'after cutover'`); n != 0 {
		t.Errorf("a source write after the cutover reached the project")
	}
	checkFollowGone(t, s, srcConn)
	if st := followStatus(t, s, pid); st["unit_active"] != "" {
		t.Errorf("status after cutover: %v", st)
	}
}

// execOn runs a multi-statement script (simple protocol) on a URL.
func execOn(t *testing.T, url, sql string) {
	t.Helper()
	conn, err := connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func allReady(tables []any) bool {
	for _, tb := range tables {
		if tb.(map[string]any)["state"] != "r" {
			return false
		}
	}
	return true
}

// checkFollowGone: no slot or publication on the source, no subscription,
// guard or follow role on the cluster.
func checkFollowGone(t *testing.T, s *server, srcConn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	var slots, pubs, subs, roles int
	if err := srcConn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_replication_slots), (SELECT count(*) FROM pg_publication)`).Scan(&slots, &pubs); err != nil {
		t.Fatal(err)
	}
	if err := s.admin("postgres").QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_subscription),
		(SELECT count(*) FROM pg_roles WHERE rolname LIKE 'capydb\_follow\_%')`).Scan(&subs, &roles); err != nil {
		t.Fatal(err)
	}
	if slots+pubs+subs+roles != 0 {
		t.Errorf("left behind: %d slots, %d publications on the source; %d subscriptions, %d follow roles", slots, pubs, subs, roles)
	}
}

// TestFollowImportAbortAndBadInput: sources that cannot follow are refused
// with what they lack (400), bodies are checked, and an abort stops the
// stream, removes the slot and publication from the source and returns the
// project to ready with the rows copied so far.
func TestFollowImportAbortAndBadInput(t *testing.T) {
	t.Parallel()
	src := clustertest.LogicalSource(t)
	ctx := context.Background()
	srcConn, err := pgx.Connect(ctx, src.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer srcConn.Close(ctx)
	for _, stmt := range strings.Split(followSourceSchema, ";\n") {
		if _, err := srcConn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, "", 0, 0, "--imports-allow-private")
	p := s.createProject(map[string]any{"name": "abort target", "environment": "non_production"})
	pid := p["id"].(string)
	path := "/v1/projects/" + pid + "/imports/follow"

	// A project of this server is no logical source: its login cannot replicate.
	other := s.createProject(map[string]any{"name": "plain source", "environment": "non_production"})
	r := s.must(400, "POST", path, map[string]any{"confirm": true, "source_url": projectURL(s, other["id"].(string))})
	if msg := r.str("error"); !strings.Contains(msg, "not ready for a follow import") || !strings.Contains(msg, "REPLICATION attribute") {
		t.Errorf("non-logical source: %s", r.Raw)
	}
	// A table without a replica identity is named.
	if _, err := srcConn.Exec(ctx, `CREATE TABLE loose (v text)`); err != nil {
		t.Fatal(err)
	}
	if msg := s.must(400, "POST", path, map[string]any{"confirm": true, "source_url": src.URL}).str("error"); !strings.Contains(msg, "public.loose") {
		t.Errorf("keyless table: %s", msg)
	}
	if _, err := srcConn.Exec(ctx, `ALTER TABLE loose REPLICA IDENTITY FULL`); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{
		{"source_url": src.URL},
		{"confirm": false, "source_url": src.URL},
		{"confirm": true},
		{"confirm": true, "source_url": "mysql://x/y"},
		{"confirm": true, "source_url": src.URL, "surprise": 1},
		{"confirm": "yes", "source_url": src.URL},
	} {
		if r := s.call("POST", path, s.key, bad); r.Status != 400 || r.str("error") == "" {
			t.Errorf("%v: %d %s", bad, r.Status, r.Raw)
		}
	}
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "ready" {
		t.Fatalf("refused starts left the project %s", st)
	}
	var slots int
	if err := srcConn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots`).Scan(&slots); err != nil || slots != 0 {
		t.Fatalf("refused starts left %d slots (%v)", slots, err)
	}

	job := s.waitJob(s.must(202, "POST", path, map[string]any{"confirm": true, "source_url": src.URL}).str("job", "id"))
	if job["state"] != "completed" {
		t.Fatalf("start: %v", job)
	}
	purl := projectURL(s, pid)
	clustertest.Eventually(t, 60*time.Second, "the initial copy", func() bool {
		return query[int64](t, purl, `SELECT count(*) FROM accounts`) == 2000
	})
	if err := srcConn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE active AND slot_name LIKE 'capydb\_follow\_%'`).Scan(&slots); err != nil || slots != 1 {
		t.Fatalf("%d active slots on the source while following (%v)", slots, err)
	}
	ab := s.waitJob(s.must(202, "POST", path+"/abort", nil).str("job", "id"))
	if ab["state"] != "completed" {
		t.Fatalf("abort: %v", ab)
	}
	if res, _ := ab["result"].(map[string]any); res == nil || res["slot_left"] != false {
		t.Errorf("abort result %v", ab["result"])
	}
	if st := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "state"); st != "ready" {
		t.Fatalf("project %s after abort", st)
	}
	checkFollowGone(t, s, srcConn)
	if n := query[int64](t, purl, `SELECT count(*) FROM accounts`); n != 2000 {
		t.Errorf("copied rows after abort: %d", n)
	}
	if _, err := srcConn.Exec(ctx, `INSERT INTO accounts (name) VALUES ('after abort')`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n := query[int64](t, purl, `SELECT count(*) FROM accounts`); n != 2000 {
		t.Errorf("a source write after the abort arrived")
	}
	s.must(409, "POST", path+"/abort", nil)
	s.must(409, "POST", path+"/cutover", map[string]any{"confirm": true})

	// Deleting a project that follows ends the stream on both sides.
	if job := s.waitJob(s.must(202, "POST", path, map[string]any{"confirm": true, "source_url": src.URL}).str("job", "id")); job["state"] != "completed" {
		t.Fatalf("second start: %v", job)
	}
	if job := s.waitJob(s.must(202, "DELETE", "/v1/projects/"+pid, nil).str("job", "id")); job["state"] != "completed" {
		t.Fatalf("delete while following: %v", job)
	}
	checkFollowGone(t, s, srcConn)
}
