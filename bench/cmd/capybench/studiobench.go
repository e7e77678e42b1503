package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/dataplane/studio"
)

// The Studio benchmark (-only studio): POST /v1/projects/{id}/sql with
// `select 1` against the same query on an open pgx connection to the
// project's direct URL (interleaved, so both see the same machine), and the
// time to encode a 1,000-row result of mixed types into the API's JSON.

var studioN = 500

func init() {
	allBenchmarks = append(allBenchmarks, "studio")
	flag.IntVar(&studioN, "studio-n", studioN, "samples of each measurement in the studio benchmark")
}

// StudioResult is studio.json.
type StudioResult struct {
	Meta
	Samples int `json:"samples"`
	// select 1: HTTP round trip of POST …/sql, and pgx on an open connection.
	API   Dist `json:"api_select1"`
	Floor Dist `json:"pgx_select1"`
	// OverheadP50 = API p50 − floor p50.
	OverheadP50 float64 `json:"overhead_p50_ms"`
	// 1,000 rows: encoding the values (studio.EncodeRows) plus the final
	// json.Marshal of the result, in process.
	Encode1000 Dist `json:"encode_1000_rows"`
	// 1,000 rows end to end: POST …/sql with max_rows 1000, and pgx reading
	// the same rows.
	API1000   Dist     `json:"api_1000_rows"`
	Floor1000 Dist     `json:"pgx_1000_rows"`
	Targets   []Target `json:"targets"`
	Notes     []string `json:"notes"`
}

const studioRowsSQL = `SELECT g AS id, g::int8 * 1000003 AS big, (g / 7.0)::numeric(12,4) AS amount, 'name ' || g AS name,
	timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute' AS at, jsonb_build_object('g', g, 'tags', ARRAY['a', 'b']) AS doc,
	ARRAY[g, g + 1, g + 2] AS ints, g % 2 = 0 AS even, decode(md5(g::text), 'hex') AS hash,
	md5(g::text)::uuid AS uid FROM generate_series(1, 1000) g`

func runStudioBench(ctx context.Context, o *options) (*StudioResult, error) {
	res := &StudioResult{Meta: newMeta(o), Samples: studioN}
	res.Benchmark = "studio"
	defer res.finish()
	srv, err := StartServer(ctx, o.bin, o.tmpBase, "studio")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	c := NewClient(srv)
	pid, job, err := c.CreateProject(ctx, "studiobench")
	if err != nil {
		return nil, err
	}
	if done, _, err := c.WaitJob(ctx, job.ID, 20*time.Millisecond, 5*time.Minute); err != nil || done.State != "completed" {
		return nil, fmt.Errorf("provisioning the studio project: %v %v", err, done.Error)
	}
	conns, err := c.Connections(ctx, pid)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, conns.DirectURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())

	sqlPath := "/v1/projects/" + pid + "/sql"
	post := func(query string, maxRows int) (time.Duration, error) {
		t0 := time.Now()
		var out struct {
			Result struct {
				RowCount int `json:"row_count"`
			} `json:"result"`
		}
		err := c.do(ctx, http.MethodPost, sqlPath, map[string]any{"query": query, "max_rows": maxRows}, &out)
		return time.Since(t0), err
	}
	floor := func(query string) (time.Duration, error) {
		t0 := time.Now()
		rows, err := conn.Query(ctx, query)
		if err != nil {
			return 0, err
		}
		for rows.Next() {
			if _, err := rows.Values(); err != nil {
				return 0, err
			}
		}
		rows.Close()
		return time.Since(t0), rows.Err()
	}
	// Warm up both paths (pool, statement cache, TLS).
	for range 20 {
		if _, err := post("select 1", 0); err != nil {
			return nil, err
		}
		if _, err := floor("select 1"); err != nil {
			return nil, err
		}
	}
	var api, fl, api1k, fl1k []float64
	for i := range studioN {
		d, err := post("select 1", 0)
		if err != nil {
			return nil, err
		}
		api = append(api, ms(d))
		if d, err = floor("select 1"); err != nil {
			return nil, err
		}
		fl = append(fl, ms(d))
		if i%5 == 0 { // the 1,000-row round trips are heavier: fewer samples
			if d, err = post(studioRowsSQL, 1000); err != nil {
				return nil, err
			}
			api1k = append(api1k, ms(d))
			if d, err = floor(studioRowsSQL); err != nil {
				return nil, err
			}
			fl1k = append(fl1k, ms(d))
		}
	}
	res.API, res.Floor = summarize(api), summarize(fl)
	res.API1000, res.Floor1000 = summarize(api1k), summarize(fl1k)
	res.OverheadP50 = round3(res.API.P50 - res.Floor.P50)

	// Encoding: the text values of the 1,000 rows, fetched once.
	rr := conn.PgConn().ExecParams(ctx, studioRowsSQL, nil, nil, nil, nil)
	var names []string
	var oids []uint32
	for _, f := range rr.FieldDescriptions() {
		names = append(names, f.Name)
		oids = append(oids, f.DataTypeOID)
	}
	var rows [][][]byte
	for rr.NextRow() {
		row := make([][]byte, len(rr.Values()))
		for i, v := range rr.Values() {
			row[i] = append([]byte(nil), v...)
		}
		rows = append(rows, row)
	}
	if _, err := rr.Close(); err != nil {
		return nil, err
	}
	if len(rows) != 1000 {
		return nil, fmt.Errorf("the row query returned %d rows", len(rows))
	}
	var enc []float64
	for range studioN {
		t0 := time.Now()
		out := studio.Result{Columns: names, Rows: studio.EncodeRows(names, oids, rows), RowCount: 1000}
		if _, err := json.Marshal(map[string]any{"result": out}); err != nil {
			return nil, err
		}
		enc = append(enc, ms(time.Since(t0)))
	}
	res.Encode1000 = summarize(enc)
	res.Targets = []Target{
		{Name: "POST …/sql select 1: p50 overhead over pgx on an open connection ≤ 2 ms", Value: fmt.Sprintf("%.2f ms (%.2f − %.2f)", res.OverheadP50, res.API.P50, res.Floor.P50), Pass: res.OverheadP50 <= 2},
		{Name: "1,000-row result encoded ≤ 10 ms (p50)", Value: fmt.Sprintf("%.2f ms", res.Encode1000.P50), Pass: res.Encode1000.P50 <= 10},
	}
	res.Notes = []string{
		fmt.Sprintf("%d interleaved samples of each select 1; every fifth round also fetched the 1,000-row query both ways. Client: Go net/http with keep-alive, on the same machine.", studioN),
		"The API path per request: API-key authentication, project lookup, guard parse (libpg_query), a pooled session of the project's own login, BEGIN + SET LOCAL limits, Parse/Describe, Bind/Execute with the row cap, COMMIT, and the history + audit rows in one control-database statement; the session reset (DISCARD ALL) runs after the answer.",
		"The 1,000-row query mixes int, bigint, numeric, text, timestamptz, jsonb, int[], boolean, bytea and uuid columns.",
	}
	logf("select 1: API p50 %.2f ms, pgx p50 %.2f ms, overhead %.2f ms; 1,000 rows encoded p50 %.2f ms; 1,000 rows API p50 %.2f ms vs pgx %.2f ms",
		res.API.P50, res.Floor.P50, res.OverheadP50, res.Encode1000.P50, res.API1000.P50, res.Floor1000.P50)
	return res, nil
}

// appendStudioSummary adds the Studio section to summary.md when studio.json exists.
func appendStudioSummary(dir string) {
	res, ok := loadResult[StudioResult](dir, "studio.json")
	if !ok {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Studio SQL (%s)\n\n", res.Meta.Started.Format("2006-01-02 15:04 UTC"))
	b.WriteString("| Measurement | p50 | p90 | p99 |\n|---|---|---|---|\n")
	row := func(name string, d Dist) {
		fmt.Fprintf(&b, "| %s | %.2f ms | %.2f ms | %.2f ms |\n", name, d.P50, d.P90, d.P99)
	}
	row("POST …/sql `select 1`", res.API)
	row("pgx `select 1` on an open connection", res.Floor)
	row("POST …/sql, 1,000 rows", res.API1000)
	row("pgx, the same 1,000 rows", res.Floor1000)
	row("encode 1,000 rows to JSON (in process)", res.Encode1000)
	b.WriteString("\n")
	for _, t := range res.Targets {
		mark := "✅ pass"
		if !t.Pass {
			mark = "❌ fail"
		}
		fmt.Fprintf(&b, "- %s %s: %s\n", mark, t.Name, t.Value)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	f, err := os.OpenFile(filepath.Join(dir, "summary.md"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		logf("error: %v", err)
		return
	}
	defer f.Close()
	_, _ = f.WriteString(b.String())
}
