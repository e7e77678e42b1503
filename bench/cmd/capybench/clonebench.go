package main

// The clone benchmark (-only clone): how fast a preview clone of a project
// loaded with `pgbench -i -s N` is, idle and under a pgbench write load,
// against `pg_dump -Fc | pg_restore` under the same load and against a raw
// copy of the database's data files.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Clone benchmark knobs (flags registered in init, so main.go only lists the mode).
var (
	cloneScale    = 30
	cloneClients  = 4
	cloneWorkers  = 0
	cloneLoadStep = 5 * time.Second
	cloneRounds   = 3
)

func init() {
	allBenchmarks = append(allBenchmarks, "clone")
	flag.IntVar(&cloneScale, "clone-scale", cloneScale, "pgbench -i scale of the clone benchmark's project (30 ≈ 450 MB)")
	flag.IntVar(&cloneClients, "clone-clients", cloneClients, "pgbench -c of the write load during the busy clone and the dump/restore")
	flag.IntVar(&cloneWorkers, "clone-workers", cloneWorkers, "--clone-workers of the server (0 = its default)")
	flag.IntVar(&cloneRounds, "clone-rounds", cloneRounds, "rounds of (busy clone, dump/restore), interleaved; medians are reported")
}

// CloneRun is one timed clone or copy.
type CloneRun struct {
	Strategy string   `json:"strategy,omitempty"`
	S        float64  `json:"s"`                // the clone as the server measured it (clone_duration_ms), or the command's wall time
	JobS     float64  `json:"job_s,omitempty"`  // POST → job completed, seen by the client
	Load     *Load    `json:"load,omitempty"`   // the write load running meanwhile
	Checks   string   `json:"checks,omitempty"` // what was verified on the copy
	Progress []string `json:"progress_seen,omitempty"`
	Steps    string   `json:"steps,omitempty"` // the server's per-step timings of the build ("preview built" log line)
}

// Load is what pgbench reported while a copy ran.
type Load struct {
	Clients       int     `json:"clients"`
	Transactions  int64   `json:"transactions"`
	Failed        int64   `json:"failed_transactions"`
	AbortedRuns   int     `json:"aborted_runs"`
	TPSBefore     float64 `json:"tps_before"`
	TPSDuring     float64 `json:"tps_during"`
	PgbenchErrors string  `json:"pgbench_errors,omitempty"`
}

// CloneResult is clone.json.
type CloneResult struct {
	Meta
	Scale         int        `json:"scale"`
	DBBytes       int64      `json:"db_bytes"`
	DataFS        string     `json:"data_fs"`
	CloneWorkers  int        `json:"clone_workers"`
	RawCopy       CloneRun   `json:"raw_copy_fsync"`     // (d) cp of base/<oid> with fsync per file
	RawCopyNoSync CloneRun   `json:"raw_copy_no_fsync"`  // the same without fsync (page cache only)
	Idle          CloneRun   `json:"idle_clone"`         // (a)
	IdleSnapshot  CloneRun   `json:"idle_snapshot_copy"` // snapshot copy of the idle database (one idle session open)
	Busy          CloneRun   `json:"busy_clone"`         // (b), the median round
	DumpRestore   CloneRun   `json:"dump_restore_busy"`  // (c), the median round
	BusyRounds    []CloneRun `json:"busy_clone_rounds"`
	DumpRounds    []CloneRun `json:"dump_restore_rounds"`
	FileCopySQL   CloneRun   `json:"create_database_file_copy"`
	WalLogSQL     CloneRun   `json:"create_database_wal_log"`
	IdleVsRaw     float64    `json:"idle_over_raw_copy"`
	// IdleVsFileCopy: what the template path pays beyond its own CREATE DATABASE.
	IdleVsFileCopy float64  `json:"idle_over_create_database_file_copy"`
	BusyVsDump     float64  `json:"busy_over_dump_restore"`
	Targets        []Target `json:"targets"`
	Notes          []string `json:"notes"`
}

func runClone(ctx context.Context, o *options) (*CloneResult, error) {
	res := &CloneResult{Meta: newMeta(o), Scale: cloneScale, CloneWorkers: cloneWorkers}
	res.Benchmark = "clone"
	defer res.finish()
	pgbench, err := pgTool("pgbench")
	if err != nil {
		return nil, err
	}
	if cloneWorkers > 0 {
		os.Setenv("CAPYDB_CLONE_WORKERS", strconv.Itoa(cloneWorkers))
		defer os.Unsetenv("CAPYDB_CLONE_WORKERS")
	}
	// The per-step timings of a build are on the server's info-level
	// "preview built" line.
	if serverLogLevel == "warn" || serverLogLevel == "error" {
		defer func(l string) { serverLogLevel = l }(serverLogLevel)
		serverLogLevel = "info"
	}
	srv, err := StartServer(ctx, o.bin, o.tmpBase, "clone")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	res.DataFS = fsType(srv.DataDir)
	c := NewClient(srv)
	pp, err := loadPgbenchProject(ctx, srv, "clonebench", cloneScale)
	if err != nil {
		return nil, err
	}
	defer pp.Admin.Close(context.Background())
	pid, db, conns, admin := pp.ID, pp.DB, pp.Conns, pp.Admin
	if _, err := admin.Exec(ctx, `CHECKPOINT`); err != nil {
		return nil, err
	}
	var oid uint32
	if err := admin.QueryRow(ctx, `SELECT oid, pg_database_size(datname) FROM pg_database WHERE datname = $1`, db).Scan(&oid, &res.DBBytes); err != nil {
		return nil, err
	}
	logf("database: %.0f MB", float64(res.DBBytes)/1e6)

	// (d) Raw copies of the data files (warm page cache, like every run here).
	src := filepath.Join(srv.DataDir, "pg", "base", strconv.FormatUint(uint64(oid), 10))
	for _, sync := range []bool{false, true} {
		dst, err := os.MkdirTemp(o.tmpBase, "capybench-rawcopy-")
		if err != nil {
			return nil, err
		}
		t := time.Now()
		err = copyDir(src, dst, sync)
		d := time.Since(t).Seconds()
		os.RemoveAll(dst)
		if err != nil {
			return nil, fmt.Errorf("raw copy: %w", err)
		}
		run := CloneRun{S: round3(d), Checks: "cp of base/<oid>"}
		if sync {
			run.Checks += " + fsync per file"
			res.RawCopy = run
		} else {
			res.RawCopyNoSync = run
		}
		logf("raw copy (fsync %v): %.2f s", sync, d)
	}

	// CREATE DATABASE … TEMPLATE with both strategies, straight in SQL.
	// FILE_COPY last, so it runs just before the idle clone, and each after
	// a CHECKPOINT, as the clone does: the floor and the clone then start
	// from the same state (WAL_LOG leaves 478 MB of WAL behind).
	for _, st := range []string{"WAL_LOG", "FILE_COPY"} {
		name := "capybench_" + strings.ToLower(st)
		if _, err := admin.Exec(ctx, `CHECKPOINT`); err != nil {
			return nil, err
		}
		t := time.Now()
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE `+pgx.Identifier{db}.Sanitize()+` STRATEGY `+st); err != nil {
			return nil, err
		}
		run := CloneRun{Strategy: strings.ToLower(st), S: round3(time.Since(t).Seconds()), Checks: "CREATE DATABASE … TEMPLATE … STRATEGY " + st}
		if _, err := admin.Exec(ctx, `DROP DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
			return nil, err
		}
		if st == "FILE_COPY" {
			res.FileCopySQL = run
		} else {
			res.WalLogSQL = run
		}
		logf("CREATE DATABASE STRATEGY %s: %.2f s", st, run.S)
	}

	// (a) Preview clone of the idle project.
	if _, err := admin.Exec(ctx, `CHECKPOINT`); err != nil {
		return nil, err
	}
	if res.Idle, err = clonePreview(ctx, c, srv, pid, "idle", nil); err != nil {
		return nil, err
	}
	logf("idle clone: %s in %.2f s (job %.2f s); steps: %s", res.Idle.Strategy, res.Idle.S, res.Idle.JobS, res.Idle.Steps)

	// A snapshot copy of the same idle database: one idle session keeps the template path closed.
	hold, err := pgx.Connect(ctx, conns.DirectURL)
	if err != nil {
		return nil, err
	}
	res.IdleSnapshot, err = clonePreview(ctx, c, srv, pid, "idle-snap", nil)
	hold.Close(context.Background())
	if err != nil {
		return nil, err
	}
	logf("idle snapshot copy: %.2f s (job %.2f s); steps: %s", res.IdleSnapshot.S, res.IdleSnapshot.JobS, res.IdleSnapshot.Steps)

	// (b) and (c), interleaved so both see the same machine (it is shared).
	for round := 1; round <= cloneRounds; round++ {
		load := startLoad(ctx, pgbench, conns.DirectURL, cloneClients)
		if err := load.warmup(ctx, 3*time.Second); err != nil {
			return nil, err
		}
		busy, err := clonePreview(ctx, c, srv, pid, fmt.Sprintf("busy-%d", round), load)
		busy.Load = load.stop()
		if err != nil {
			return nil, err
		}
		logf("round %d: busy clone: %s in %.2f s (job %.2f s); pgbench: %d tx, %d failed, %.0f tps before, %.0f during; steps: %s", round,
			busy.Strategy, busy.S, busy.JobS, busy.Load.Transactions, busy.Load.Failed, busy.Load.TPSBefore, busy.Load.TPSDuring, busy.Steps)
		dr, err := dumpRestore(ctx, admin, srv, conns.DirectURL, pgbench)
		if err != nil {
			return nil, err
		}
		logf("round %d: pg_dump -Fc | pg_restore under load: %.2f s; pgbench: %d failed", round, dr.S, dr.Load.Failed)
		res.BusyRounds, res.DumpRounds = append(res.BusyRounds, busy), append(res.DumpRounds, dr)
	}
	res.Busy, res.DumpRestore = medianRun(res.BusyRounds), medianRun(res.DumpRounds)
	var failed int64
	var aborted int
	consistent := true
	for _, r := range res.BusyRounds {
		failed += r.Load.Failed
		aborted += r.Load.AbortedRuns
		consistent = consistent && strings.HasPrefix(r.Checks, "consistent")
	}

	if res.RawCopy.S > 0 {
		res.IdleVsRaw = round3(res.Idle.S / res.RawCopy.S)
	}
	if res.FileCopySQL.S > 0 {
		res.IdleVsFileCopy = round3(res.Idle.S / res.FileCopySQL.S)
	}
	if res.DumpRestore.S > 0 {
		res.BusyVsDump = round3(res.Busy.S / res.DumpRestore.S)
	}
	res.Targets = []Target{
		{Name: "idle clone ≤ 1.2× raw file copy (with fsync)", Value: fmt.Sprintf("%.2f×", res.IdleVsRaw), Pass: res.IdleVsRaw <= 1.2},
		{Name: "busy clone ≤ 0.35× pg_dump | pg_restore under the same load", Value: fmt.Sprintf("%.2f×", res.BusyVsDump), Pass: res.BusyVsDump <= 0.35},
		{Name: "no failed pgbench transaction during the busy clones", Value: fmt.Sprintf("%d failed, %d aborted runs", failed, aborted), Pass: failed == 0 && aborted == 0},
		{Name: "every busy clone is one consistent snapshot (TPC-B balances add up)", Value: res.Busy.Checks, Pass: consistent},
	}
	res.Notes = append(res.Notes,
		fmt.Sprintf("(b) and (c) ran %d times, interleaved; the table shows the median round. Busy clone rounds: %s; dump/restore rounds: %s.",
			cloneRounds, runTimes(res.BusyRounds), runTimes(res.DumpRounds)),
		"All copies read a warm page cache (the database was just loaded); the data dir is on "+res.DataFS+".",
		"Clone times are the server's clone_duration_ms (building the database, ownership changes included; role setup and the swap into place excluded); job_s is POST → completed as the client saw it.",
		fmt.Sprintf("Raw copy without fsync: %.2f s; CREATE DATABASE … STRATEGY FILE_COPY %.2f s, WAL_LOG %.2f s.", res.RawCopyNoSync.S, res.FileCopySQL.S, res.WalLogSQL.S))
	return res, nil
}

// clonePreview creates a clone preview, waits for it, records what the
// server measured, checks the copy, and deletes the preview.
func clonePreview(ctx context.Context, c *Client, srv *Server, pid, name string, load *loadRunner) (CloneRun, error) {
	var run CloneRun
	var out struct {
		Preview struct {
			ID string `json:"id"`
		} `json:"preview"`
		Job Job `json:"job"`
	}
	t0 := time.Now()
	if load != nil {
		load.mark()
	}
	if err := c.do(ctx, http.MethodPost, "/v1/projects/"+pid+"/preview-databases", map[string]any{"name": name, "mode": "clone"}, &out); err != nil {
		return run, err
	}
	seen := map[string]bool{}
	var result struct {
		Job struct {
			State    string         `json:"state"`
			Error    *string        `json:"error"`
			Progress map[string]any `json:"progress"`
			Result   map[string]any `json:"result"`
		} `json:"job"`
	}
	for {
		if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+out.Job.ID, nil, &result); err != nil {
			return run, err
		}
		if ph, ok := result.Job.Progress["phase"].(string); ok && !seen[ph] {
			seen[ph] = true
			run.Progress = append(run.Progress, fmt.Sprintf("%s@%.1fs(%v%%)", ph, time.Since(t0).Seconds(), result.Job.Progress["percent"]))
		}
		if result.Job.State == "completed" {
			break
		}
		if result.Job.State == "failed" {
			return run, fmt.Errorf("clone %s failed: %v", name, deref(result.Job.Error))
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return run, err
		}
	}
	run.JobS = round3(time.Since(t0).Seconds())
	if load != nil {
		load.mark()
	}
	run.Steps = srv.previewSteps(out.Preview.ID)
	run.Strategy, _ = result.Job.Result["clone_strategy"].(string)
	ms, _ := result.Job.Result["clone_duration_ms"].(float64)
	run.S = round3(ms / 1000)

	var conns struct {
		Connections Connections `json:"connections"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/preview-databases/"+out.Preview.ID+"/connections", nil, &conns); err != nil {
		return run, err
	}
	pc, err := pgx.Connect(ctx, conns.Connections.DirectURL)
	if err != nil {
		return run, err
	}
	var accounts, abal, tbal, bbal, hist int64
	err = pc.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT sum(abalance) FROM pgbench_accounts),
		(SELECT sum(tbalance) FROM pgbench_tellers), (SELECT sum(bbalance) FROM pgbench_branches),
		(SELECT coalesce(sum(delta), 0) FROM pgbench_history)`).Scan(&accounts, &abal, &tbal, &bbal, &hist)
	pc.Close(context.Background())
	if err != nil {
		return run, err
	}
	if accounts == int64(cloneScale)*100000 && abal == tbal && tbal == bbal && bbal == hist {
		run.Checks = fmt.Sprintf("consistent: %d accounts; sum(abalance) = sum(tbalance) = sum(bbalance) = sum(history.delta) = %d", accounts, abal)
	} else {
		run.Checks = fmt.Sprintf("INCONSISTENT: %d accounts; balances %d / %d / %d, history %d", accounts, abal, tbal, bbal, hist)
	}
	var del struct {
		Job Job `json:"job"`
	}
	if err := c.do(ctx, http.MethodDelete, "/v1/preview-databases/"+out.Preview.ID, nil, &del); err != nil {
		return run, err
	}
	_, _, err = c.WaitJob(ctx, del.Job.ID, 50*time.Millisecond, 2*time.Minute)
	return run, err
}

// previewSteps finds the step timings the server logged for a preview build.
func (s *Server) previewSteps(previewID string) string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return ""
	}
	steps := ""
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `"preview built"`) || !strings.Contains(line, previewID) {
			continue
		}
		var rec struct {
			Steps string `json:"steps"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil {
			steps = rec.Steps
		}
	}
	return steps
}

// medianRun returns the round with the median time.
func medianRun(runs []CloneRun) CloneRun {
	if len(runs) == 0 {
		return CloneRun{}
	}
	sorted := append([]CloneRun(nil), runs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].S < sorted[j].S })
	return sorted[len(sorted)/2]
}

func runTimes(runs []CloneRun) string {
	var parts []string
	for _, r := range runs {
		parts = append(parts, fmt.Sprintf("%.2f s", r.S))
	}
	return strings.Join(parts, ", ")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// dumpRestore times pg_dump -Fc | pg_restore of the project (as its own
// role, like a user would) into a new database while pgbench writes.
func dumpRestore(ctx context.Context, admin *pgx.Conn, srv *Server, projectURL, pgbench string) (CloneRun, error) {
	run := CloneRun{Strategy: "pg_dump -Fc | pg_restore", Checks: "pg_restore --no-owner into a new database (template0)"}
	pgDump, err := pgTool("pg_dump")
	if err != nil {
		return run, err
	}
	pgRestore, err := pgTool("pg_restore")
	if err != nil {
		return run, err
	}
	target := "capybench_restore"
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+target+` TEMPLATE template0`); err != nil {
		return run, err
	}
	defer admin.Exec(context.Background(), `DROP DATABASE IF EXISTS `+target+` WITH (FORCE)`) //nolint:errcheck
	targetURL, err := srv.AdminDSNFor(target)
	if err != nil {
		return run, err
	}
	load := startLoad(ctx, pgbench, projectURL, cloneClients)
	if err := load.warmup(ctx, 3*time.Second); err != nil {
		return run, err
	}
	load.mark()
	t0 := time.Now()
	dump := exec.CommandContext(ctx, pgDump, "-Fc", "-d", projectURL)
	restore := exec.CommandContext(ctx, pgRestore, "--no-owner", "-d", targetURL)
	pipe, err := dump.StdoutPipe()
	if err != nil {
		return run, err
	}
	restore.Stdin = pipe
	var dumpErr, restoreErr strings.Builder
	dump.Stderr, restore.Stderr = &dumpErr, &restoreErr
	if err := restore.Start(); err != nil {
		return run, err
	}
	if err := dump.Run(); err != nil {
		_ = restore.Wait()
		return run, fmt.Errorf("pg_dump: %v: %s", err, tail(dumpErr.String(), 300))
	}
	if err := restore.Wait(); err != nil {
		return run, fmt.Errorf("pg_restore: %v: %s", err, tail(restoreErr.String(), 300))
	}
	run.S = round3(time.Since(t0).Seconds())
	load.mark()
	run.Load = load.stop()
	return run, nil
}

// pgTool finds a PostgreSQL client program: PATH, then the newest
// /usr/lib/postgresql/<major>/bin.
func pgTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Slice(matches, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[i]))))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[j]))))
		return a > b
	})
	if len(matches) == 0 {
		return "", fmt.Errorf("%s not found (install the postgresql package)", name)
	}
	return matches[0], nil
}

// copyDir copies the regular files of src into dst, fsyncing each when sync is set.
func copyDir(src, dst string, sync bool) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.CopyBuffer(out, in, buf)
		in.Close()
		if err == nil && sync {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if sync {
		if d, err := os.Open(dst); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// cloneSummary renders clone.json for summary.md.
func cloneSummary(dir string) string {
	r, ok := loadResult[CloneResult](dir, "clone.json")
	if !ok {
		return ""
	}
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("\n## Preview clones (%s)\n\n", r.Meta.Started.Format("2006-01-02 15:04 UTC"))
	w("A project loaded with `pgbench -i -s %d` (%.0f MB), data dir on %s, durable cluster (fsync on). ", r.Scale, float64(r.DBBytes)/1e6, r.DataFS)
	w("Load: `pgbench -c %d` (TPC-B) on the project's direct URL.\n\n", cloneClients)
	w("| Copy | Strategy | Time | Job (client view) | pgbench during it |\n|---|---|---|---|---|\n")
	row := func(name string, run CloneRun) {
		load := "—"
		if run.Load != nil {
			load = fmt.Sprintf("%d tx, **%d failed**, %.0f tps before → %.0f during", run.Load.Transactions, run.Load.Failed, run.Load.TPSBefore, run.Load.TPSDuring)
		}
		job := "—"
		if run.JobS > 0 {
			job = fmt.Sprintf("%.2f s", run.JobS)
		}
		w("| %s | %s | %.2f s | %s | %s |\n", name, mdEscape(run.Strategy), run.S, job, load)
	}
	row("(a) clone, idle project", r.Idle)
	row("(b) clone under pgbench", r.Busy)
	row("(c) pg_dump -Fc \\| pg_restore under pgbench", r.DumpRestore)
	row("(d) raw copy of base/<oid> + fsync", r.RawCopy)
	row("raw copy without fsync", r.RawCopyNoSync)
	row("snapshot copy of the idle project", r.IdleSnapshot)
	row("CREATE DATABASE … STRATEGY FILE_COPY", r.FileCopySQL)
	row("CREATE DATABASE … STRATEGY WAL_LOG", r.WalLogSQL)
	w("\nRatios: idle clone / raw copy = **%.2f×** (/ CREATE DATABASE … FILE_COPY alone = %.2f×); busy clone / dump-restore = **%.2f×**.\n\n",
		r.IdleVsRaw, r.IdleVsFileCopy, r.BusyVsDump)
	for _, s := range []struct {
		name string
		run  CloneRun
	}{{"idle clone", r.Idle}, {"busy clone (median round)", r.Busy}} {
		if s.run.Steps != "" {
			w("- Steps of the %s (server log): %s\n", s.name, s.run.Steps)
		}
	}
	for _, t := range r.Targets {
		w("- %s %s: %s\n", passMark(t.Pass), t.Name, mdEscape(t.Value))
	}
	if len(r.Busy.Progress) > 0 {
		w("- Progress seen on the busy clone's job: %s\n", strings.Join(r.Busy.Progress, ", "))
	}
	for _, n := range r.Notes {
		w("- %s\n", n)
	}
	return b.String()
}
