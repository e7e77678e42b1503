package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// TestCLIFollowImport: import --follow, follow-status --wait (text and
// JSON), cutover and follow-abort through the CLI, with its usage errors.
func TestCLIFollowImport(t *testing.T) {
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
	p := s.createProject(map[string]any{"name": "cli follower", "environment": "non_production"})
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	app := u.in(t.TempDir())
	app.expect(0, "link", "--project", p["slug"].(string))

	app.expect(2, "import", "--follow", "--file", "x.dump")
	app.expect(2, "import", "--follow", "--source-url", src.URL, "--recreate")
	app.expect(2, "import", "--follow", "--source-url", src.URL) // no terminal, no --confirm
	app.expect(5, "import", "cutover", "--confirm")              // nothing to cut over: 409
	if st := app.json("import", "follow-status", "--wait"); st["result"] == nil || st["job"].(map[string]any)["state"] != "completed" {
		t.Fatalf("status without a follow: %v", st)
	}

	job := app.json("import", "--follow", "--source-url", src.URL, "--confirm", "--wait")
	if job["state"] != "completed" || job["type"] != "project.import_follow_start" {
		t.Fatalf("import --follow: %v", job)
	}
	if _, err := srcConn.Exec(ctx, `INSERT INTO accounts (name) VALUES ('streamed')`); err != nil {
		t.Fatal(err)
	}
	purl := projectURL(s, p["id"].(string))
	clustertest.Eventually(t, 60*time.Second, "the streamed row", func() bool {
		return query[int64](t, purl, `SELECT count(*) FROM accounts WHERE name = 'streamed'`) == 1
	})
	var text string
	clustertest.Eventually(t, 30*time.Second, "follow-status to report an active stream", func() bool {
		text = app.expect(0, "import", "follow-status", "--wait").stdout
		return strings.Contains(text, "active") && strings.Contains(text, "public.accounts=r") && strings.Contains(text, "lag")
	})
	st := app.json("import", "follow-status", "--wait")
	res, _ := st["result"].(map[string]any)
	if res == nil || res["unit_active"] != "active" || res["lag_bytes"] == nil {
		t.Fatalf("follow-status -o json: %v", st)
	}
	cj := app.json("import", "cutover", "--confirm", "--wait")
	if cj["state"] != "completed" {
		t.Fatalf("cutover: %v", cj)
	}
	if id := query[int64](t, purl, `INSERT INTO accounts (name) VALUES ('mine') RETURNING id`); id != 2002 {
		t.Errorf("next id after cutover %d, want 2002", id)
	}
	checkFollowGone(t, s, srcConn)

	// follow-abort: start again (the project is replaced by the source), abort.
	if job := app.json("import", "--follow", "--source-url", src.URL, "--confirm", "--wait"); job["state"] != "completed" {
		t.Fatalf("second import --follow: %v", job)
	}
	if ab := app.json("import", "follow-abort", "--wait"); ab["state"] != "completed" {
		t.Fatalf("follow-abort: %v", ab)
	}
	checkFollowGone(t, s, srcConn)
	app.expect(5, "import", "follow-abort")
}
