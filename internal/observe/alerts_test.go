package observe_test

import (
	"context"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/observe"
	"github.com/capydb/capydb/internal/plan"
	"github.com/capydb/capydb/internal/store"
)

func bgsvcConfig() bgsvc.PeriodicConfig { return bgsvc.PeriodicConfig{Interval: time.Hour} }

// TestAlertCycle fills a small-limit project with real data: warning →
// critical → read-only hook at 100 % → data dropped → resolved and the hook
// switched back; then, with the limit moved, the hysteresis lines (critical
// stays above 90, warning stays above 75, a new breach is a new alert) and
// the 24-hour renotification.
func TestAlertCycle(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	var limit int64
	var hook []bool
	s := observe.NewSampler(observe.Config{Store: e.st,
		Clusters: func() map[string]*dataplane.Cluster { return map[string]*dataplane.Cluster{e.dp.ID: e.dp} },
		Limits: func(string) plan.Limits {
			return plan.Limits{Name: "vibe", MaxConnections: 40, StorageLimitBytes: limit, MaxPreviews: 1}
		},
		ReadOnly: func(_ context.Context, id string, on bool) error {
			if id != e.prj.ID {
				t.Errorf("read-only hook for %s", id)
			}
			hook = append(hook, on)
			return nil
		}}, bgsvcConfig())
	c := e.connect()
	exec(t, c, `CREATE TABLE fill (v text)`)
	size := func() int64 {
		st, err := e.dp.LiveStats(ctx, e.prj.DatabaseName)
		if err != nil {
			t.Fatal(err)
		}
		return st.SizeBytes
	}
	base := size()
	limit = base * 10 / 6 // 60 %
	now := time.Now().UTC().Truncate(time.Second)
	round := func() {
		t.Helper()
		now = now.Add(time.Minute)
		if _, err := s.Round(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	fillTo := func(pct int64) {
		t.Helper()
		for size()*100 < pct*limit {
			exec(t, c, `INSERT INTO fill SELECT md5(random()::text) || md5(random()::text) FROM generate_series(1, 3000)`)
		}
	}
	open := func() *store.Alert {
		t.Helper()
		as, err := store.ListAlerts(ctx, e.st.Pool, e.prj.ID, now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.Kind == observe.KindStorage && a.ResolvedAt == nil {
				return a
			}
		}
		return nil
	}
	events := func() []string {
		t.Helper()
		rows, err := e.st.Pool.Query(ctx, `SELECT type || ':' || (data->'alert'->>'severity') FROM events
			WHERE organization_id = $1 ORDER BY created_at, id`, e.org.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			_ = rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}
	expectEvents := func(want ...string) {
		t.Helper()
		got := events()
		if len(got) != len(want) {
			t.Fatalf("events %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("events %v, want %v", got, want)
			}
		}
	}

	round()
	if a := open(); a != nil {
		t.Fatalf("alert at 60 %%: %+v", a)
	}
	fillTo(82)
	round()
	a := open()
	if a == nil || a.Severity != observe.SevWarning || a.LimitValue != limit || a.ObservedValue*100 < 80*limit {
		t.Fatalf("at 82 %%: %+v", a)
	}
	first := a.ID
	round() // unchanged: no new notification
	expectEvents("alert.triggered:warning")
	fillTo(96)
	round()
	if a := open(); a == nil || a.ID != first || a.Severity != observe.SevCritical {
		t.Fatalf("at 96 %%: %+v", a)
	}
	expectEvents("alert.triggered:warning", "alert.triggered:critical")
	if len(hook) != 0 {
		t.Fatalf("read-only hook called below 100 %%: %v", hook)
	}
	fillTo(101)
	round()
	if len(hook) != 1 || !hook[0] {
		t.Fatalf("read-only hook at 101 %%: %v", hook)
	}
	round()
	if len(hook) != 1 {
		t.Fatalf("read-only hook called again while still full: %v", hook)
	}
	if _, err := store.AcknowledgeAlert(ctx, e.st.Pool, e.prj.ID, first, now); err != nil {
		t.Fatal(err)
	}
	exec(t, c, `DROP TABLE fill`)
	round()
	if a := open(); a != nil {
		t.Fatalf("after dropping the data the alert is still open: %+v (size %d of %d)", a, size(), limit)
	}
	if len(hook) != 2 || hook[1] {
		t.Fatalf("read-only hook after the drop: %v", hook)
	}
	expectEvents("alert.triggered:warning", "alert.triggered:critical", "alert.resolved:critical")
	as, _ := store.ListAlerts(ctx, e.st.Pool, e.prj.ID, now.Add(-time.Hour))
	if len(as) != 1 || as[0].AcknowledgedAt == nil || as[0].ResolvedAt == nil {
		t.Fatalf("the resolved alert is not listed as resolved and acknowledged: %+v", as)
	}

	// Hysteresis with the size fixed and the limit moved.
	base = size()
	at := func(pct float64) { limit = int64(float64(base) * 100 / pct); round() }
	at(96)
	a = open()
	if a == nil || a.ID == first || a.Severity != observe.SevCritical {
		t.Fatalf("a new breach: %+v (first %s)", a, first)
	}
	second := a.ID
	for _, step := range []struct {
		pct  float64
		want string
	}{{91, "critical"}, {93, "critical"}, {89, "warning"}, {92, "warning"}, {77, "warning"}, {81, "warning"}, {76, "warning"}} {
		at(step.pct)
		if a := open(); a == nil || a.ID != second || a.Severity != step.want {
			t.Fatalf("at %v %%: %+v, want %s", step.pct, a, step.want)
		}
	}
	n := len(events())
	now = now.Add(25 * time.Hour) // renotified once a day while open
	at(78)
	if got := events(); len(got) != n+1 || got[n] != "alert.triggered:warning" {
		t.Fatalf("no renotification after 24 h: %v", got)
	}
	at(74)
	if a := open(); a != nil {
		t.Fatalf("at 74 %%: %+v", a)
	}
	if got := events(); got[len(got)-1] != "alert.resolved:warning" {
		t.Fatalf("events %v", got)
	}
}
