package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// TestEphemeralDatabases (API.md §3.26, #112–115): created with no account,
// read and destroyed with the claim token only (stored hashed), capped per
// client address (429 + Retry-After) or per organization with a key,
// claimed into an organization with the same id and URLs, reaped when
// expired; a wrong or used token is 404.
func TestEphemeralDatabases(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--ephemeral-databases", "--ephemeral-cap", "2", "--ephemeral-reaper-interval", "200ms")
	ctx := context.Background()
	control := s.admin("capydb_control")
	admin := s.admin("postgres")
	anon := hdr()
	// Every answer is checked against the OpenAPI document (declared status, schema).
	req := func(method, path string, h http.Header, body any) response {
		t.Helper()
		r := s.req(method, path, h, body)
		checkAnswer(t, method, path, r.Status, r.Header.Get("Content-Type"), r.Raw)
		return r
	}
	withToken := func(tok string) http.Header { return hdr("X-CapyDB-Claim-Token", tok) }

	// Create with no credential at all.
	c1 := req("POST", "/v1/ephemeral-databases", anon, map[string]any{"name": "scratch"})
	expectStatus(t, "anonymous create", c1, 201, "")
	id, tok := c1.str("ephemeral_database", "project_id"), c1.str("claim_token")
	if !strings.HasPrefix(id, "prj_") || !strings.HasPrefix(tok, "eph_") || len(tok) < 40 ||
		c1.str("claim_url") != s.url+"/dashboard/claim/"+id+"?token="+tok || c1.str("ephemeral_database", "state") != "provisioning" ||
		c1.str("ephemeral_database", "name") != "scratch" || c1.str("ephemeral_database", "region") != "local" {
		t.Fatalf("created: %s", c1.Raw)
	}
	created, _ := time.Parse(time.RFC3339, c1.str("ephemeral_database", "created_at"))
	expires, _ := time.Parse(time.RFC3339, c1.str("ephemeral_database", "expires_at"))
	if d := expires.Sub(created); d < 72*time.Hour-time.Second || d > 72*time.Hour+time.Second {
		t.Fatalf("expires_at - created_at = %s, want 72h: %s", d, c1.Raw)
	}
	// Only the SHA-256 of the token is stored.
	var stored []byte
	var owner string
	if err := control.QueryRow(ctx, `SELECT claim_token_hash, owner_key FROM ephemeral_databases WHERE project_id = $1`, id).Scan(&stored, &owner); err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256([]byte(tok)); !bytes.Equal(stored, h[:]) || !strings.HasPrefix(owner, "addr:") {
		t.Fatalf("stored hash %x owner %q", stored, owner)
	}

	// Read with the token until ready, then its URL works.
	var direct string
	clustertest.Eventually(t, 60*time.Second, "ephemeral ready", func() bool {
		r := req("GET", "/v1/ephemeral-databases/"+id, withToken(tok), nil)
		expectStatus(t, "read", r, 200, "")
		direct = r.str("connections", "direct_url")
		return r.str("ephemeral_database", "state") == "ready" && direct != ""
	})
	conn, err := connect(direct)
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(direct), err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'kept')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	for what, h := range map[string]http.Header{"wrong token": withToken("eph_wrong"), "no token": anon,
		"an API key instead": bearer(s.key)} {
		expectStatus(t, "read with "+what, req("GET", "/v1/ephemeral-databases/"+id, h, nil), 404, "ephemeral database not found")
	}
	expectStatus(t, "destroy with a wrong token", req("DELETE", "/v1/ephemeral-databases/"+id, withToken("eph_wrong"), nil), 404, "")

	// The cap counts per client address: 2 here.
	c2 := req("POST", "/v1/ephemeral-databases", anon, nil)
	expectStatus(t, "second create", c2, 201, "")
	over := req("POST", "/v1/ephemeral-databases", anon, map[string]any{})
	expectStatus(t, "create over the cap", over, 429, "at most 2 unclaimed ephemeral databases")
	if ra, err := strconv.Atoi(over.Header.Get("Retry-After")); err != nil || ra < 71*3600 || ra > 72*3600 {
		t.Fatalf("Retry-After %q, want about 72h in seconds", over.Header.Get("Retry-After"))
	}
	// With a key the cap counts per organization instead; a bad key is 401.
	c3 := req("POST", "/v1/ephemeral-databases", bearer(s.key), nil)
	expectStatus(t, "create with a key", c3, 201, "")
	expectStatus(t, "create with a bad key", req("POST", "/v1/ephemeral-databases", bearer("capy_live_garbage"), nil), 401, "")
	expectStatus(t, "bad input", req("POST", "/v1/ephemeral-databases", anon, map[string]any{"region": "mars"}), 400, "")

	// Claim: a wrong token is 404, the right one moves it into the organization.
	expectStatus(t, "claim with a wrong token", req("POST", "/v1/ephemeral-databases/"+id+"/claim", bearer(s.key),
		map[string]any{"claim_token": "eph_wrong"}), 404, "")
	expectStatus(t, "claim without a key", req("POST", "/v1/ephemeral-databases/"+id+"/claim", anon,
		map[string]any{"claim_token": tok}), 401, "")
	cl := req("POST", "/v1/ephemeral-databases/"+id+"/claim", bearer(s.key), map[string]any{"claim_token": tok})
	expectStatus(t, "claim", cl, 200, "")
	me := s.must(200, "GET", "/v1/me", nil)
	if cl.str("project", "id") != id || cl.str("project", "organization_id") != me.str("organization", "id") ||
		cl.str("project", "environment") != "production" || cl.str("project", "state") != "ready" {
		t.Fatalf("claimed: %s", cl.Raw)
	}
	if got := s.must(200, "GET", "/v1/projects/"+id+"/connections", nil).str("connections", "direct_url"); got != direct {
		t.Fatalf("the claimed project's URL changed: %s != %s", redact(got), redact(direct))
	}
	if v := query[string](t, direct, "SELECT body FROM notes WHERE id = 1"); v != "kept" {
		t.Fatalf("data after claim: %q", v)
	}
	if j := s.must(200, "GET", "/v1/jobs/"+cl.str("project", "latest_job_id"), nil); j.str("job", "project_id") != id {
		t.Fatalf("the provisioning job did not move with the project: %s", j.Raw)
	}
	// A used token is 404 everywhere.
	expectStatus(t, "read after claim", req("GET", "/v1/ephemeral-databases/"+id, withToken(tok), nil), 404, "")
	expectStatus(t, "claim again", req("POST", "/v1/ephemeral-databases/"+id+"/claim", bearer(s.key), map[string]any{"claim_token": tok}), 404, "")
	expectStatus(t, "destroy after claim", req("DELETE", "/v1/ephemeral-databases/"+id, withToken(tok), nil), 404, "")

	// Destroy early: 204 (twice), then gone, database dropped.
	id2, tok2 := c2.str("ephemeral_database", "project_id"), c2.str("claim_token")
	dbName2 := projectDatabase(t, control, id2)
	for i := 0; i < 2; i++ {
		if r := req("DELETE", "/v1/ephemeral-databases/"+id2, withToken(tok2), nil); r.Status != 204 || len(r.Raw) != 0 {
			t.Fatalf("destroy #%d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	expectStatus(t, "read after destroy", req("GET", "/v1/ephemeral-databases/"+id2, withToken(tok2), nil), 404, "")
	waitDatabaseGone(t, admin, dbName2)
	// The cap has room again.
	expectStatus(t, "create after destroy", req("POST", "/v1/ephemeral-databases", anon, nil), 201, "")

	// Expiry: the reaper deletes an unclaimed one past its 72 hours.
	id3, tok3 := c3.str("ephemeral_database", "project_id"), c3.str("claim_token")
	dbName3 := projectDatabase(t, control, id3)
	clustertest.Eventually(t, 60*time.Second, "third ready", func() bool {
		var st string
		_ = control.QueryRow(ctx, `SELECT state FROM projects WHERE id = $1`, id3).Scan(&st)
		return st == "ready"
	})
	if _, err := control.Exec(ctx, `UPDATE ephemeral_databases SET expires_at = now() - interval '1 second' WHERE project_id = $1`, id3); err != nil {
		t.Fatal(err)
	}
	expectStatus(t, "read after expiry", req("GET", "/v1/ephemeral-databases/"+id3, withToken(tok3), nil), 404, "")
	waitDatabaseGone(t, admin, dbName3)
	var destroyed bool
	if err := control.QueryRow(ctx, `SELECT destroyed_at IS NOT NULL FROM ephemeral_databases WHERE project_id = $1`, id3).Scan(&destroyed); err != nil || !destroyed {
		t.Fatalf("reaped row destroyed=%v (%v)", destroyed, err)
	}
}

// TestCLIDbNew: `capydb db new` with no login prints a URL that works, in one
// command; `ephemeral destroy` uses the saved state and removes it.
func TestCLIDbNew(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--ephemeral-databases", "--rate-limit-ephemeral", "2/h:2")
	u := newCLIUser(t)
	r := u.expect(0, "db", "new", "--api-url", s.url)
	url := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(url, "postgres://") || strings.Contains(url, "\n") || strings.Contains(r.stderr, "eph_") {
		t.Fatalf("db new printed %q (stderr %s)", r.stdout, r.stderr)
	}
	if v := query[int](t, url, "SELECT 41 + 1"); v != 42 {
		t.Fatalf("SELECT through the printed URL: %d", v)
	}
	fi, err := os.Stat(filepath.Join(u.dir, ".capydb", "ephemeral.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ephemeral.json: %v %v", fi, err)
	}
	raw, _ := os.ReadFile(filepath.Join(u.dir, ".capydb", "ephemeral.json"))
	if !strings.Contains(string(raw), `"claim_token": "eph_`) || !strings.Contains(string(raw), "/dashboard/claim/prj_") {
		t.Fatalf("ephemeral.json: %s", raw)
	}
	if g, _ := os.ReadFile(filepath.Join(u.dir, ".gitignore")); !strings.Contains(string(g), ".capydb/") {
		t.Fatalf(".gitignore does not keep the token out of git: %q", g)
	}
	d := u.json("ephemeral", "destroy")
	if id, _ := d["destroyed"].(string); !strings.HasPrefix(id, "prj_") {
		t.Fatalf("destroy: %v", d)
	}
	if _, err := os.Stat(filepath.Join(u.dir, ".capydb", "ephemeral.json")); !os.IsNotExist(err) {
		t.Fatalf("ephemeral.json left after destroy: %v", err)
	}
	u.expect(4, "ephemeral", "destroy")
	// Creation is rate-limited per client address (API.md §1.11), apart from the cap.
	if r := s.req("POST", "/v1/ephemeral-databases", hdr(), nil); r.Status != 201 {
		t.Fatalf("second create: %d %s", r.Status, r.Raw)
	}
	third := s.req("POST", "/v1/ephemeral-databases", hdr(), nil)
	if ra, _ := strconv.Atoi(third.Header.Get("Retry-After")); third.Status != 429 || third.str("error") != "rate limit exceeded" || ra < 60 {
		t.Fatalf("third create within the hour: %d %s (Retry-After %q)", third.Status, third.Raw, third.Header.Get("Retry-After"))
	}
	// Off by default: the CLI says so.
	off := startServer(t, "", 0, 0)
	if r := newCLIUser(t).expect(4, "db", "new", "--api-url", off.url); !strings.Contains(r.stderr, "not enabled on this deployment") {
		t.Fatalf("db new against a server without ephemeral databases: %s", r.stderr)
	}
}

// projectDatabase reads a project's database name from the control database.
func projectDatabase(t *testing.T, control *pgx.Conn, id string) string {
	t.Helper()
	var name string
	if err := control.QueryRow(context.Background(), `SELECT database_name FROM projects WHERE id = $1`, id).Scan(&name); err != nil {
		t.Fatal(err)
	}
	return name
}

// waitDatabaseGone waits until a database no longer exists on the cluster.
func waitDatabaseGone(t *testing.T, admin *pgx.Conn, name string) {
	t.Helper()
	clustertest.Eventually(t, 60*time.Second, "database "+name+" dropped", func() bool {
		var n int
		_ = admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n)
		return n == 0
	})
}
