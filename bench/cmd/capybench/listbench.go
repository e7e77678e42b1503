package main

// list (issue 23 item 5): GET /v1/projects at 1,000 projects — the first
// page (?limit=100, the target) and the whole unpaginated list — against a
// floor measured in the same run: the same SQL the handler runs (key lookup,
// project page, organization, clusters) through pgx on the same control
// database, with no HTTP and no JSON.
//
// A few projects are made through the API; the rest are copies of one of
// their control-plane rows inserted directly (distinct id, slug, database
// and role names). The list reads only the control plane, so the copies cost
// it exactly what real projects do, and creating 1,000 real databases would
// take minutes of the shared machine for nothing the list reads.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
)

var (
	listProjects = 1000
	listReal     = 5
	listRequests = 300
)

func init() {
	allBenchmarks = append(allBenchmarks, "list")
	flag.IntVar(&listProjects, "list-projects", listProjects, "projects in the organization for the list benchmark")
	flag.IntVar(&listReal, "list-real", listReal, "of those, projects created through the API (the rest are copied control-plane rows)")
	flag.IntVar(&listRequests, "list-requests", listRequests, "timed requests per list measurement (API and floor alternate)")
}

// ListResult is list.json.
type ListResult struct {
	Meta
	Projects     int       `json:"projects"`
	RealProjects int       `json:"real_projects"`
	Requests     int       `json:"requests"`
	Page         ListPhase `json:"first_page_limit_100"`
	Full         ListPhase `json:"full_list"`
	FloorSQL     []string  `json:"floor_sql"`
	PagePlan     []string  `json:"page_plan"`         // EXPLAIN ANALYZE of the page query
	GenericPlan  []string  `json:"page_plan_generic"` // the same with the plan a prepared statement settles on
	Targets      []Target  `json:"targets"`
}

// ListPhase is one URL timed through the API and its SQL floor.
type ListPhase struct {
	URL      string  `json:"url"`
	Rows     int     `json:"rows"`
	Bytes    int     `json:"bytes"`
	API      Dist    `json:"api_ms"`
	Floor    Dist    `json:"floor_ms"`
	RatioP99 float64 `json:"ratio_p99"`
}

func runList(ctx context.Context, o *options) (*ListResult, error) {
	res := &ListResult{Meta: newMeta(o), Requests: listRequests}
	srv, err := StartServer(ctx, o.bin, o.tmpBase, "list", "--warm-pool", "0")
	if err != nil {
		return nil, fmt.Errorf("starting the server: %w", err)
	}
	defer srv.Stop()
	cl := NewClient(srv)
	var first string
	for i := range listReal {
		pid, job, err := cl.CreateProject(ctx, fmt.Sprintf("list %03d %s", i, o.runID))
		if err != nil {
			return nil, err
		}
		if _, _, err := cl.WaitJob(ctx, job.ID, 50*time.Millisecond, 2*time.Minute); err != nil {
			return nil, err
		}
		if first == "" {
			first = pid
		}
	}
	res.RealProjects = listReal
	ctrl, err := srv.AdminDSNFor("capydb_control")
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, ctrl)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	// Copies of a real row; created_at spreads them so the order is stable.
	if _, err := pool.Exec(ctx, `INSERT INTO projects
		SELECT (jsonb_populate_record(p, jsonb_build_object(
			'id', 'prj_listbench' || lpad(g::text, 6, '0'),
			'name', 'list copy ' || g, 'slug', 'list-copy-' || g,
			'database_name', p.database_name || '_c' || g, 'role_name', p.role_name || '_c' || g,
			'owner_role', p.owner_role || '_c' || g, 'latest_job_id', NULL,
			'supabase_ref', capydb_supabase_ref(), 'supabase_branch_id', gen_random_uuid(),
			'supabase_number', nextval(pg_get_serial_sequence('projects', 'supabase_number')),
			'created_at', p.created_at + g * interval '1 ms'))).*
		FROM projects p, generate_series(1, $2::int) g WHERE p.id = $1`, first, listProjects-listReal); err != nil {
		return nil, fmt.Errorf("copying project rows: %w", err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM projects WHERE deleted_at IS NULL`).Scan(&res.Projects); err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, `ANALYZE projects`); err != nil {
		return nil, err
	}
	logf("list: %d projects (%d through the API)", res.Projects, res.RealProjects)

	key, err := store.GetAPIKeyByHash(ctx, pool, auth.HashKey(srv.Key))
	if err != nil {
		return nil, err
	}
	for _, mode := range []string{"auto", "force_generic_plan"} {
		plan, err := explainPage(ctx, pool, key.OrganizationID, mode)
		if err != nil {
			return nil, err
		}
		if mode == "auto" {
			res.PagePlan = plan
		} else {
			res.GenericPlan = plan
		}
	}
	// The floor: the handler's statements, one after another, rows scanned.
	floor := func(limit int) error {
		if _, err := store.GetAPIKeyByHash(ctx, pool, auth.HashKey(srv.Key)); err != nil {
			return err
		}
		if _, err := store.ListProjectsPage(ctx, pool, key.OrganizationID, "", store.ProjectPage{Limit: limit}); err != nil {
			return err
		}
		if _, err := store.GetOrganization(ctx, pool, key.OrganizationID); err != nil {
			return err
		}
		_, err := store.ListClusters(ctx, pool)
		return err
	}
	res.FloorSQL = []string{"api key by SHA-256 (store.GetAPIKeyByHash)", "project page (store.ListProjectsPage, limit+1)",
		"organization (store.GetOrganization)", "clusters (store.ListClusters)"}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	// get times the request until the body is read; the rows are counted
	// after the clock stops (decoding 700 kB is the client's cost, not the API's).
	get := func(url string) (time.Duration, int, int, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+srv.Key)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, 0, err
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil {
			return 0, 0, 0, err
		}
		if resp.StatusCode != 200 {
			return 0, 0, 0, fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, raw)
		}
		var body struct {
			Projects []json.RawMessage `json:"projects"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			return 0, 0, 0, err
		}
		return took, len(body.Projects), len(raw), nil
	}
	phase := func(path string, limit int) (ListPhase, error) {
		ph := ListPhase{URL: path}
		url := srv.URL + path
		for range 20 { // warm connections, pools and caches
			if _, _, _, err := get(url); err != nil {
				return ph, err
			}
			if err := floor(limit); err != nil {
				return ph, err
			}
		}
		var api, fl []float64
		for range listRequests {
			took, n, b, err := get(url)
			if err != nil {
				return ph, err
			}
			api = append(api, ms(took))
			ph.Rows, ph.Bytes = n, b
			start := time.Now()
			if err := floor(limit); err != nil {
				return ph, err
			}
			fl = append(fl, ms(time.Since(start)))
		}
		ph.API, ph.Floor = summarize(api), summarize(fl)
		if ph.Floor.P99 > 0 {
			ph.RatioP99 = round3(ph.API.P99 / ph.Floor.P99)
		}
		logf("list: %s: %d rows, %d bytes: p50 %.2f ms p99 %.2f ms (floor p50 %.2f ms p99 %.2f ms)",
			path, ph.Rows, ph.Bytes, ph.API.P50, ph.API.P99, ph.Floor.P50, ph.Floor.P99)
		return ph, nil
	}
	if res.Page, err = phase("/v1/projects?limit=100", 101); err != nil {
		return nil, err
	}
	if res.Full, err = phase("/v1/projects", 0); err != nil {
		return nil, err
	}
	res.Targets = []Target{
		{Name: fmt.Sprintf("GET /v1/projects?limit=100 p99 ≤ 20 ms at %d projects", res.Projects),
			Value: fmt.Sprintf("%.2f ms (SQL floor %.2f ms)", res.Page.API.P99, res.Page.Floor.P99),
			Pass:  res.Page.API.P99 <= 20 && res.Page.Rows == 100},
	}
	res.Meta.finish()
	return res, nil
}

// appendListSummary adds the list section to summary.md when list.json exists.
func appendListSummary(dir string) {
	res, ok := loadResult[ListResult](dir, "list.json")
	if !ok {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## List at %d projects (%s)\n\n", res.Projects, res.Meta.Started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "`%s`. %d projects made through the API, the rest copied control-plane rows; %d sequential requests per URL, each followed by the SQL floor (the handler's statements through pgx on the same control database, no HTTP/JSON).\n\n",
		strings.Join(append([]string{"go run ./bench/cmd/capybench"}, res.Meta.Args...), " "), res.RealProjects, res.Requests)
	b.WriteString("| URL | rows | bytes | p50 | p99 | floor p50 / p99 |\n|---|---|---|---|---|---|\n")
	for _, ph := range []ListPhase{res.Page, res.Full} {
		fmt.Fprintf(&b, "| `%s` | %d | %d | %.2f ms | %.2f ms | %.2f / %.2f ms |\n", ph.URL, ph.Rows, ph.Bytes, ph.API.P50, ph.API.P99, ph.Floor.P50, ph.Floor.P99)
	}
	b.WriteString("\n")
	for _, t := range res.Targets {
		fmt.Fprintf(&b, "- %s %s: %s\n", passMark(t.Pass), t.Name, t.Value)
	}
	f, err := os.OpenFile(filepath.Join(dir, "summary.md"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		logf("error: %v", err)
		return
	}
	defer f.Close()
	_, _ = f.WriteString(b.String())
}

// explainPage runs EXPLAIN ANALYZE of the first-page query (store.ListProjectsPage's
// WHERE and ORDER BY) under plan_cache_mode mode.
func explainPage(ctx context.Context, pool *pgxpool.Pool, orgID, mode string) ([]string, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
		return nil, err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "RESET plan_cache_mode") //nolint:errcheck
	rows, err := conn.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id FROM projects
		WHERE organization_id = $1 AND deleted_at IS NULL AND ($2 = '' OR id = $2)
		  AND ($3 = '' OR (created_at, id) > ($4, $3))
		ORDER BY created_at, id LIMIT $5`, orgID, "", "", time.Time{}, 101)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
