package observe

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/capydb/capydb/internal/store"
)

// Collector exposes, on each scrape of /metrics, the sampler's latest
// reading per project, the open alerts, jobs by type and state and webhook
// deliveries by state, all read from the control database. Labels are
// bounded: project ids (one series per live project), job types, states,
// alert kinds and severities — never paths or free text.
type Collector struct {
	Store *store.Store
}

var (
	descConns = prometheus.NewDesc("capydb_project_connections", "Connections to the project database at the last sample.",
		[]string{"project_id"}, nil)
	descSize = prometheus.NewDesc("capydb_project_database_size_bytes", "Project database size at the last sample.",
		[]string{"project_id"}, nil)
	descAlert = prometheus.NewDesc("capydb_project_alert_open", "1 while a usage alert of this kind and severity is open.",
		[]string{"project_id", "kind", "severity"}, nil)
	descJobs  = prometheus.NewDesc("capydb_jobs", "Jobs by type and state.", []string{"type", "state"}, nil)
	descHooks = prometheus.NewDesc("capydb_webhook_deliveries", "Webhook deliveries by state.", []string{"state"}, nil)
	descLag   = prometheus.NewDesc("capydb_sampler_last_sample_age_seconds", "Seconds since the newest observability sample.", nil, nil)
	descReady = prometheus.NewDesc("capydb_queue_ready_jobs", "Pending jobs whose run_at has come (waiting for a worker).", nil, nil)
	descWait  = prometheus.NewDesc("capydb_queue_oldest_ready_age_seconds", "How long the oldest ready pending job has waited.", nil, nil)
	descDur   = prometheus.NewDesc("capydb_job_duration_seconds", "Run time of the jobs completed in the last 24 hours, by type.",
		[]string{"type"}, nil)
)

// durationBuckets cover a 50 ms grant to a half-hour restore.
var durationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descSize, descAlert, descJobs, descHooks, descLag, descReady, descWait, descDur} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; a failed query leaves its
// metrics out of the scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db := c.Store.Pool
	if rows, err := db.Query(ctx, `SELECT DISTINCT ON (s.project_id) s.project_id, s.connections, s.database_size_bytes
		FROM observability_samples s JOIN projects p ON p.id = s.project_id
		WHERE p.deleted_at IS NULL AND s.sampled_at > now() - interval '1 hour'
		ORDER BY s.project_id, s.sampled_at DESC`); err == nil {
		for rows.Next() {
			var id string
			var conns, size int64
			if rows.Scan(&id, &conns, &size) == nil {
				ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(conns), id)
				ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(size), id)
			}
		}
		rows.Close()
	}
	if rows, err := db.Query(ctx, `SELECT project_id, kind, severity FROM project_alerts WHERE resolved_at IS NULL`); err == nil {
		for rows.Next() {
			var id, kind, sev string
			if rows.Scan(&id, &kind, &sev) == nil {
				ch <- prometheus.MustNewConstMetric(descAlert, prometheus.GaugeValue, 1, id, kind, sev)
			}
		}
		rows.Close()
	}
	if rows, err := db.Query(ctx, `SELECT type, state, count(*) FROM jobs GROUP BY type, state`); err == nil {
		for rows.Next() {
			var typ, state string
			var n int64
			if rows.Scan(&typ, &state, &n) == nil {
				ch <- prometheus.MustNewConstMetric(descJobs, prometheus.GaugeValue, float64(n), typ, state)
			}
		}
		rows.Close()
	}
	if rows, err := db.Query(ctx, `SELECT state, count(*) FROM webhook_deliveries GROUP BY state`); err == nil {
		for rows.Next() {
			var state string
			var n int64
			if rows.Scan(&state, &n) == nil {
				ch <- prometheus.MustNewConstMetric(descHooks, prometheus.GaugeValue, float64(n), state)
			}
		}
		rows.Close()
	}
	var age *float64
	if db.QueryRow(ctx, `SELECT extract(epoch FROM now() - max(sampled_at))::float8 FROM observability_samples`).Scan(&age) == nil && age != nil {
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, *age)
	}
	var ready int64
	var wait *float64
	if db.QueryRow(ctx, `SELECT count(*), extract(epoch FROM now() - min(run_at))::float8 FROM jobs
		WHERE state = 'pending' AND run_at <= now()`).Scan(&ready, &wait) == nil {
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, float64(ready))
		w := 0.0
		if wait != nil {
			w = *wait
		}
		ch <- prometheus.MustNewConstMetric(descWait, prometheus.GaugeValue, w)
	}
	collectDurations(ctx, c.Store, ch)
}

// collectDurations builds one histogram per job type from the completed
// jobs of the last day (the jobs table is the record; no process state).
func collectDurations(ctx context.Context, st *store.Store, ch chan<- prometheus.Metric) {
	rows, err := st.Pool.Query(ctx, `SELECT type, extract(epoch FROM completed_at - started_at)::float8 FROM jobs
		WHERE state = 'completed' AND completed_at > now() - interval '24 hours' AND started_at IS NOT NULL`)
	if err != nil {
		return
	}
	defer rows.Close()
	type hist struct {
		n   uint64
		sum float64
		le  map[float64]uint64
	}
	by := map[string]*hist{}
	for rows.Next() {
		var typ string
		var d float64
		if rows.Scan(&typ, &d) != nil {
			return
		}
		h := by[typ]
		if h == nil {
			h = &hist{le: map[float64]uint64{}}
			by[typ] = h
		}
		h.n++
		h.sum += d
		for _, b := range durationBuckets {
			if d <= b {
				h.le[b]++
			}
		}
	}
	for typ, h := range by {
		ch <- prometheus.MustNewConstHistogram(descDur, h.n, h.sum, h.le, typ)
	}
}
