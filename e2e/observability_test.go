package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// TestObservabilityRoutes: live metrics reflect real sessions, the sampler
// fills the history, the logs route shows the project's own error line and
// never another project's, alerts, notification preferences and org usage
// answer with the spec's shapes, and bad input is a 400.
func TestObservabilityRoutes(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--sampler-interval", "1s")
	a := s.createProject(map[string]any{"name": "obs a"})
	b := s.createProject(map[string]any{"name": "obs b"})
	pa, pb := a["id"].(string), b["id"].(string)
	direct := func(pid string) string {
		return s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "direct_url")
	}
	const n = 3
	for i := range n {
		c, err := connect(direct(pa))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		if i == 0 {
			if _, err := c.Exec(context.Background(), `SELECT 1/0 AS "obs_marker_a"`); err == nil {
				t.Fatal("division by zero succeeded")
			}
		}
	}
	cb, err := connect(direct(pb))
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(context.Background())
	if _, err := cb.Exec(context.Background(), `SELECT 1/0 AS "obs_marker_b"`); err == nil {
		t.Fatal("division by zero succeeded")
	}

	o := s.must(200, "GET", "/v1/projects/"+pa+"/observability", nil)
	if got := o.get("observability", "connection_count"); got != float64(n) {
		t.Errorf("connection_count = %v, want %d: %s", got, n, o.Raw)
	}
	if o.get("observability", "connection_limit") != float64(60) || o.get("observability", "database_size_bytes").(float64) < 1<<20 {
		t.Errorf("observability: %s", o.Raw)
	}

	// Logs: tail until the project's line arrives; never the other project's.
	var entries []any
	clustertest.Eventually(t, 30*time.Second, "the project's error line in its logs", func() bool {
		r := s.must(200, "GET", "/v1/projects/"+pa+"/logs?severity=error", nil)
		entries = r.get("logs", "entries").([]any)
		return strings.Contains(string(r.Raw), "obs_marker_a")
	})
	for _, e := range entries {
		m := e.(map[string]any)
		if strings.Contains(fmt.Sprint(m["message"]), "obs_marker_b") || m["database"] != a["database_name"] ||
			strings.HasPrefix(fmt.Sprint(m["user"]), "capydb_agent_") {
			t.Fatalf("project a's logs hold a line of another database: %v", m)
		}
	}
	last := entries[len(entries)-1].(map[string]any)
	if last["severity"] != "error" || last["sqlstate"] != "22012" {
		t.Errorf("the error line: %v", last)
	}
	cursor := last["cursor"].(string)
	tail := s.must(200, "GET", "/v1/projects/"+pa+"/logs?cursor="+url.QueryEscape(cursor), nil)
	// After the cursor: only later lines (the agent that measured the
	// metrics above may have been logged), never the marker again.
	for _, e := range tail.get("logs", "entries").([]any) {
		if m := e.(map[string]any); strings.Contains(fmt.Sprint(m["message"]), "obs_marker") || m["database"] != a["database_name"] {
			t.Errorf("tail after the last line: %s", tail.Raw)
		}
	}
	// b's logs hold b's line; a's cursor is refused on b.
	clustertest.Eventually(t, 30*time.Second, "project b's line", func() bool {
		r := s.must(200, "GET", "/v1/projects/"+pb+"/logs", nil)
		return strings.Contains(string(r.Raw), "obs_marker_b") && !strings.Contains(string(r.Raw), "obs_marker_a")
	})
	for _, q := range []string{"cursor=" + url.QueryEscape(cursor), "cursor=forged", "hours=0", "hours=721", "hours=abc",
		"limit=-1", "severity=loud"} {
		r := s.call("GET", "/v1/projects/"+pb+"/logs?"+q, s.key, nil)
		if r.Status != 400 || r.str("error") == "" {
			t.Errorf("logs?%s: %d %s, want 400", q, r.Status, r.Raw)
		}
	}
	// The agent that measured the live metrics left lines; none is served.
	for _, e := range s.must(200, "GET", "/v1/projects/"+pa+"/logs", nil).get("logs", "entries").([]any) {
		if u := fmt.Sprint(e.(map[string]any)["user"]); strings.HasPrefix(u, "capydb_agent_") {
			t.Errorf("a maintenance login's line is served: %v", e)
		}
	}
	r := s.call("GET", "/v1/projects/"+pa+"/logs/search?q=obs", s.key, nil)
	if r.Status != 503 || r.str("error") != "log search is not enabled on this deployment" {
		t.Errorf("search without --log-search: %d %s", r.Status, r.Raw)
	}

	// History: the sampler runs every second here.
	clustertest.Eventually(t, 30*time.Second, "two samples in the history", func() bool {
		r := s.must(200, "GET", "/v1/projects/"+pa+"/observability/history?hours=1", nil)
		return len(r.get("samples").([]any)) >= 2
	})
	h := s.must(200, "GET", "/v1/projects/"+pa+"/observability/history", nil)
	sample := h.get("samples").([]any)[0].(map[string]any)
	if sample["connection_limit"] != float64(60) || sample["storage_limit_bytes"] != float64(100<<30) {
		t.Errorf("sample: %v", sample)
	}
	for _, q := range []string{"hours=0", "hours=721", "hours=x"} {
		if r := s.call("GET", "/v1/projects/"+pa+"/observability/history?"+q, s.key, nil); r.Status != 400 {
			t.Errorf("history?%s: %d %s", q, r.Status, r.Raw)
		}
	}

	// Alerts: none at these sizes; acknowledging an unknown alert is a 404.
	if r := s.must(200, "GET", "/v1/projects/"+pa+"/alerts", nil); len(r.get("alerts").([]any)) != 0 {
		t.Errorf("alerts: %s", r.Raw)
	}
	if r := s.call("POST", "/v1/projects/"+pa+"/alerts/alr_nope/acknowledge", s.key, nil); r.Status != 404 {
		t.Errorf("acknowledge unknown: %d %s", r.Status, r.Raw)
	}

	// Notification preferences.
	org := s.must(200, "GET", "/v1/me", nil).str("organization", "id")
	prefs := "/v1/organizations/" + org + "/notification-preferences"
	d := s.must(200, "GET", prefs, nil)
	if d.get("notification_preferences", "alert_emails_enabled") != true || d.get("notification_preferences", "updated_at") != nil ||
		!strings.Contains(string(d.Raw), `"updated_at":null`) {
		t.Errorf("default preferences: %s", d.Raw)
	}
	put := s.must(200, "PUT", prefs, map[string]any{"alert_emails_enabled": false,
		"alert_email_recipients": []string{"ops@example.com"}, "billing_email_recipients": []string{}})
	if put.get("notification_preferences", "alert_emails_enabled") != false || put.str("notification_preferences", "updated_at") == "" {
		t.Errorf("put preferences: %s", put.Raw)
	}
	if g := s.must(200, "GET", prefs, nil); g.get("notification_preferences", "alert_email_recipients").([]any)[0] != "ops@example.com" {
		t.Errorf("preferences not kept: %s", g.Raw)
	}
	for _, body := range []map[string]any{
		{"alert_emails_enabled": true, "alert_email_recipients": []string{"not an address"}, "billing_email_recipients": []string{}},
		{"alert_emails_enabled": true, "alert_email_recipients": strings.Split("a@x.io,b@x.io,c@x.io,d@x.io,e@x.io,f@x.io,g@x.io,h@x.io,i@x.io,j@x.io,k@x.io", ","), "billing_email_recipients": []string{}},
		{"alert_emails_enabled": true, "alert_email_recipients": []string{}},
	} {
		if r := s.call("PUT", prefs, s.key, body); r.Status != 400 {
			t.Errorf("PUT %v: %d %s", body, r.Status, r.Raw)
		}
	}

	// Organization usage.
	u := s.must(200, "GET", "/v1/organizations/"+org+"/usage", nil)
	if u.get("usage", "totals", "projects") != float64(2) || u.get("usage", "totals", "connections").(float64) < n ||
		len(u.get("usage", "storage_history").([]any)) != 30 || len(u.get("usage", "projects").([]any)) != 2 {
		t.Errorf("usage: %s", u.Raw)
	}
	checkPrometheus(t, s, pa)
	hist := u.get("usage", "storage_history").([]any)
	if today := hist[29].(map[string]any); today["date"] != time.Now().UTC().Format(time.DateOnly) || today["storage_bytes"].(float64) <= 0 {
		t.Errorf("today's storage history: %v", today)
	}
}

// checkPrometheus parses /metrics with the Prometheus text parser: the
// project's gauges are there and requests are labelled by route template.
func checkPrometheus(t *testing.T, s *server, projectID string) {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	found := false
	for _, m := range fams["capydb_project_connections"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "project_id" && l.GetValue() == projectID && m.GetGauge().GetValue() >= 1 {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no capydb_project_connections for %s", projectID)
	}
	routes := map[string]bool{}
	for _, m := range fams["capydb_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" {
				routes[l.GetValue()] = true
				if strings.Contains(l.GetValue(), "prj_") {
					t.Errorf("a raw path in a route label: %q", l.GetValue())
				}
			}
		}
	}
	if !routes["/v1/projects/{projectID}/observability"] {
		t.Errorf("requests are not counted by route template: %v", routes)
	}
	if len(fams["capydb_jobs"].GetMetric()) == 0 {
		t.Errorf("no capydb_jobs series")
	}
	// The project's provisioning job completed: its type has a duration
	// histogram with at least that one observation.
	observed := uint64(0)
	for _, m := range fams["capydb_job_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "type" && l.GetValue() == "instance.create" {
				observed = m.GetHistogram().GetSampleCount()
			}
		}
	}
	if observed == 0 {
		t.Errorf("no capydb_job_duration_seconds{type=\"instance.create\"} observation")
	}
	if m := fams["capydb_log_collector_last_read_age_seconds"].GetMetric(); len(m) != 1 || m[0].GetGauge().GetValue() > 60 {
		t.Errorf("log collector lag: %v", m)
	}
	if len(fams["capydb_queue_ready_jobs"].GetMetric()) != 1 || len(fams["capydb_queue_oldest_ready_age_seconds"].GetMetric()) != 1 {
		t.Errorf("queue depth gauges missing")
	}
}
