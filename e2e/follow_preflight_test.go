package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestPreflightReplicationBlockers (#60 preflight): the preflight says
// exactly what a follow import lacks on the source — the REPLICATION
// attribute, a replica identity on every table, no trigger that would fire
// during apply — and stops saying it once each is fixed.
func TestPreflightReplicationBlockers(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--imports-allow-private")
	src := s.createProject(map[string]any{"name": "source", "environment": "non_production"})
	dst := s.createProject(map[string]any{"name": "target", "environment": "non_production"})
	srcURL := projectURL(s, src["id"].(string))
	seed(t, srcURL, `CREATE TABLE keyed (id int PRIMARY KEY, v text);
CREATE TABLE "Log Lines" (at timestamptz, line text);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER audit_always BEFORE INSERT ON keyed FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE keyed ENABLE ALWAYS TRIGGER audit_always;
`)
	repl := func() map[string]any {
		t.Helper()
		r := preflight(t, s, dst["id"].(string), srcURL)
		m, _ := r.get("preflight", "source", "replication").(map[string]any)
		if m == nil {
			t.Fatalf("no replication section: %s", r.Raw)
		}
		return m
	}
	walLevel := ""
	if err := s.admin("postgres").QueryRow(context.Background(), `SELECT current_setting('wal_level')`).Scan(&walLevel); err != nil {
		t.Fatal(err)
	}
	var walBlocker []string
	if walLevel != "logical" {
		walBlocker = []string{"wal_level is " + walLevel + ", not logical"}
	}
	got := repl()
	blockers := fmt.Sprint(got["blockers"])
	for _, want := range []string{
		"the source login lacks the REPLICATION attribute",
		`tables without a primary key or replica identity (add one, or ALTER TABLE ... REPLICA IDENTITY FULL): public."Log Lines"`,
		"triggers that would fire while changes are applied (ALTER TABLE ... ENABLE TRIGGER ... to make them ordinary): public.keyed: audit_always (ENABLE ALWAYS)",
	} {
		if !strings.Contains(blockers, want) {
			t.Errorf("blockers %s\nlack %q", blockers, want)
		}
	}
	if got["ready"] != false || got["role_can_replicate"] != false || got["wal_level"] != walLevel {
		t.Errorf("replication: %v", got)
	}

	// Fix each one on the source; only the server setting (if any) remains.
	role := src["role_name"].(string)
	seed(t, srcURL, `ALTER TABLE "Log Lines" REPLICA IDENTITY FULL; ALTER TABLE keyed ENABLE TRIGGER audit_always;`)
	if _, err := s.admin("postgres").Exec(context.Background(), `ALTER ROLE "`+role+`" REPLICATION`); err != nil {
		t.Fatal(err)
	}
	got = repl()
	var left []string
	for _, b := range got["blockers"].([]any) {
		left = append(left, b.(string))
	}
	if !slices.Equal(left, walBlocker) || got["role_can_replicate"] != true || got["ready"] != (walLevel == "logical") {
		t.Fatalf("after the fixes: %v, want blockers %v", got, walBlocker)
	}
}
