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
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descSize, descAlert, descJobs, descHooks, descLag} {
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
}
