package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The backup benchmark (-only backup): on a pgbench -i -s 30 project, a
// capydb backup (pg_dump through the blob store, then the verification
// restore) against a bare pg_dump -Fc of the same database, and a restore
// into a new preview against a bare pg_restore.

var (
	backupScale  = 30
	backupRounds = 3
)

func init() {
	allBenchmarks = append(allBenchmarks, "backup")
	flag.IntVar(&backupScale, "backup-scale", backupScale, "pgbench -i scale of the backup benchmark's project")
	flag.IntVar(&backupRounds, "backup-rounds", backupRounds, "rounds of (bare pg_dump, capydb backup, bare pg_restore, restore to a new preview); medians are reported")
}

// BackupRound is one interleaved round.
type BackupRound struct {
	BareDumpS       float64 `json:"bare_pg_dump_s"`
	BareDumpBytes   int64   `json:"bare_pg_dump_bytes"`
	BackupDumpS     float64 `json:"backup_dump_s"`   // POST → dump stored (job reaches verification)
	BackupTotalS    float64 `json:"backup_total_s"`  // POST → job completed (verified)
	BackupVerifyS   float64 `json:"backup_verify_s"` // total - dump
	BackupBytes     int64   `json:"backup_bytes"`
	BareRestoreS    float64 `json:"bare_pg_restore_s"`
	PreviewRestoreS float64 `json:"restore_new_preview_s"` // POST → job completed
}

// BackupResult is backup.json.
type BackupResult struct {
	Meta
	Scale          int           `json:"scale"`
	DBBytes        int64         `json:"db_bytes"`
	Rounds         []BackupRound `json:"rounds"`
	Median         BackupRound   `json:"median"`
	DumpMBps       float64       `json:"backup_dump_db_mb_per_s"`  // database size / dump time
	BareDumpMBps   float64       `json:"bare_pg_dump_db_mb_per_s"` // database size / bare dump time
	ArchiveMBps    float64       `json:"backup_archive_mb_per_s"`  // archive bytes written / dump time
	DumpVsBare     float64       `json:"backup_dump_over_bare_pg_dump"`
	TotalVsBare    float64       `json:"backup_total_over_bare_pg_dump"`
	VerifyOverhead float64       `json:"verification_overhead_fraction"`
	RestoreVsBare  float64       `json:"restore_preview_over_bare_pg_restore"`
	Targets        []Target      `json:"targets"`
	Notes          []string      `json:"notes"`
}

func runBackupBench(ctx context.Context, o *options) (*BackupResult, error) {
	res := &BackupResult{Meta: newMeta(o), Scale: backupScale}
	res.Benchmark = "backup"
	defer res.finish()
	pgDump, err := pgTool("pg_dump")
	if err != nil {
		return nil, err
	}
	pgRestore, err := pgTool("pg_restore")
	if err != nil {
		return nil, err
	}
	srv, err := StartServer(ctx, o.bin, o.tmpBase, "backup")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	c := NewClient(srv)
	pp, err := loadPgbenchProject(ctx, srv, "backupbench", backupScale)
	if err != nil {
		return nil, err
	}
	defer pp.Admin.Close(context.Background())
	pid, db, admin := pp.ID, pp.DB, pp.Admin
	if _, err := admin.Exec(ctx, `CHECKPOINT`); err != nil {
		return nil, err
	}
	if err := admin.QueryRow(ctx, `SELECT pg_database_size($1)`, db).Scan(&res.DBBytes); err != nil {
		return nil, err
	}
	logf("database: %.0f MB", float64(res.DBBytes)/1e6)
	dbDSN, err := srv.AdminDSNFor(db)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(o.tmpBase, "capybench-backup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	file := filepath.Join(tmp, "bare.dump")

	for round := 1; round <= backupRounds; round++ {
		var r BackupRound
		// Bare pg_dump -Fc to a file on the same disk as the blob store.
		t0 := time.Now()
		if out, err := exec.CommandContext(ctx, pgDump, "-Fc", "-f", file, "-d", dbDSN).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("pg_dump: %v: %s", err, tail(string(out), 300))
		}
		r.BareDumpS = round3(time.Since(t0).Seconds())
		if st, err := os.Stat(file); err == nil {
			r.BareDumpBytes = st.Size()
		}

		// capydb backup: dump, then verification.
		var created struct {
			Job Job `json:"job"`
		}
		t0 = time.Now()
		if err := c.do(ctx, http.MethodPost, "/v1/projects/"+pid+"/backups", map[string]any{"label": fmt.Sprintf("bench-%d", round)}, &created); err != nil {
			return nil, err
		}
		dumped := time.Duration(0)
		for {
			var j struct {
				Job struct {
					State    string         `json:"state"`
					Progress map[string]any `json:"progress"`
					Error    string         `json:"error"`
				} `json:"job"`
			}
			if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+created.Job.ID, nil, &j); err != nil {
				return nil, err
			}
			if ph, _ := j.Job.Progress["phase"].(string); dumped == 0 && (ph == "dumped" || ph == "verifying") {
				dumped = time.Since(t0)
			}
			if j.Job.State == "failed" {
				return nil, fmt.Errorf("backup failed: %s", j.Job.Error)
			}
			if j.Job.State == "completed" {
				break
			}
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				return nil, err
			}
		}
		total := time.Since(t0)
		if dumped == 0 {
			dumped = total
		}
		r.BackupDumpS, r.BackupTotalS = round3(dumped.Seconds()), round3(total.Seconds())
		r.BackupVerifyS = round3(r.BackupTotalS - r.BackupDumpS)
		var list struct {
			Backups []struct {
				BackupKey string `json:"backup_key"`
				JobID     string `json:"job_id"`
				SizeBytes int64  `json:"size_bytes"`
			} `json:"backups"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/projects/"+pid+"/backups", nil, &list); err != nil {
			return nil, err
		}
		key := ""
		for _, b := range list.Backups {
			if b.JobID == created.Job.ID {
				key, r.BackupBytes = b.BackupKey, b.SizeBytes
			}
		}

		// Bare pg_restore into a new database.
		target := "capybench_restore"
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+target+` WITH (FORCE)`); err != nil {
			return nil, err
		}
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+target+` TEMPLATE template0`); err != nil {
			return nil, err
		}
		targetDSN, err := srv.AdminDSNFor(target)
		if err != nil {
			return nil, err
		}
		t0 = time.Now()
		if out, err := exec.CommandContext(ctx, pgRestore, "--no-owner", "--jobs=2", "-d", targetDSN, file).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("pg_restore: %v: %s", err, tail(string(out), 300))
		}
		r.BareRestoreS = round3(time.Since(t0).Seconds())
		if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+target+` WITH (FORCE)`); err != nil {
			return nil, err
		}

		// Restore the backup into a new preview.
		var restored struct {
			Job Job `json:"job"`
		}
		t0 = time.Now()
		if err := c.do(ctx, http.MethodPost, "/v1/projects/"+pid+"/restores", map[string]any{"backup_key": key,
			"preview_name": fmt.Sprintf("bench-restore-%d", round)}, &restored); err != nil {
			return nil, err
		}
		done, _, err := c.WaitJob(ctx, restored.Job.ID, 20*time.Millisecond, 20*time.Minute)
		if err != nil {
			return nil, err
		}
		if done.State != "completed" {
			return nil, fmt.Errorf("restore failed: %s", deref(done.Error))
		}
		r.PreviewRestoreS = round3(time.Since(t0).Seconds())
		var jd struct {
			Job struct {
				PreviewDatabaseID string `json:"preview_database_id"`
			} `json:"job"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+restored.Job.ID, nil, &jd); err == nil && jd.Job.PreviewDatabaseID != "" {
			_ = c.do(ctx, http.MethodDelete, "/v1/preview-databases/"+jd.Job.PreviewDatabaseID, nil, nil)
		}
		logf("round %d: bare pg_dump %.2f s (%d MB); backup dump %.2f s + verify %.2f s; bare pg_restore %.2f s; restore to new preview %.2f s",
			round, r.BareDumpS, r.BareDumpBytes>>20, r.BackupDumpS, r.BackupVerifyS, r.BareRestoreS, r.PreviewRestoreS)
		res.Rounds = append(res.Rounds, r)
	}
	res.Median = medianBackupRound(res.Rounds)
	m := res.Median
	res.DumpMBps = round3(float64(res.DBBytes) / 1e6 / m.BackupDumpS)
	res.BareDumpMBps = round3(float64(res.DBBytes) / 1e6 / m.BareDumpS)
	res.ArchiveMBps = round3(float64(m.BackupBytes) / 1e6 / m.BackupDumpS)
	res.DumpVsBare = round3(m.BackupDumpS / m.BareDumpS)
	res.TotalVsBare = round3(m.BackupTotalS / m.BareDumpS)
	res.VerifyOverhead = round3(m.BackupVerifyS / m.BackupDumpS)
	res.RestoreVsBare = round3(m.PreviewRestoreS / m.BareRestoreS)
	res.Targets = []Target{
		{Name: "backup dump ≤ 1.3× bare pg_dump -Fc", Value: fmt.Sprintf("%.2f×", res.DumpVsBare), Pass: res.DumpVsBare <= 1.3},
		{Name: "verification overhead (reported)", Value: fmt.Sprintf("+%.0f%% of the dump time", 100*res.VerifyOverhead), Pass: true},
		{Name: "restore to a new preview vs bare pg_restore (reported)", Value: fmt.Sprintf("%.2f×", res.RestoreVsBare), Pass: true},
	}
	res.Notes = append(res.Notes,
		"Backup dump time is POST → the job reports the dump stored (it includes queueing, the snapshot and the row counts of the same snapshot, and streaming + hashing into the file:// blob store).",
		"Verification restores the archive into a throwaway database with pg_restore, counts rows per table and drops it.",
		"Restore to a new preview includes creating the preview's role, the checksum check of the archive, pg_restore into a new database and the swap into place.",
		fmt.Sprintf("Medians of %d interleaved rounds; warm page cache.", backupRounds))
	return res, nil
}

func medianBackupRound(rs []BackupRound) BackupRound {
	if len(rs) == 0 {
		return BackupRound{}
	}
	pick := func(get func(BackupRound) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		for i := range v {
			for j := i + 1; j < len(v); j++ {
				if v[j] < v[i] {
					v[i], v[j] = v[j], v[i]
				}
			}
		}
		return v[(len(v)-1)/2]
	}
	return BackupRound{
		BareDumpS: pick(func(r BackupRound) float64 { return r.BareDumpS }), BareDumpBytes: rs[0].BareDumpBytes,
		BackupDumpS: pick(func(r BackupRound) float64 { return r.BackupDumpS }), BackupTotalS: pick(func(r BackupRound) float64 { return r.BackupTotalS }),
		BackupVerifyS: pick(func(r BackupRound) float64 { return r.BackupVerifyS }), BackupBytes: rs[0].BackupBytes,
		BareRestoreS: pick(func(r BackupRound) float64 { return r.BareRestoreS }), PreviewRestoreS: pick(func(r BackupRound) float64 { return r.PreviewRestoreS }),
	}
}

// appendBackupSummary adds the backup section to summary.md when
// backup.json exists.
func appendBackupSummary(dir string) {
	res, ok := loadResult[BackupResult](dir, "backup.json")
	if !ok {
		return
	}
	m := res.Median
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Backups and restores (%s)\n\n", res.Meta.Started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "A project loaded with `pgbench -i -s %d` (%.0f MB); blob store `file://` on the data dir's disk. Medians of %d interleaved rounds.\n\n",
		res.Scale, float64(res.DBBytes)/1e6, len(res.Rounds))
	b.WriteString("| Operation | Time | vs. |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| bare `pg_dump -Fc` to a file | %.2f s (%.0f MB/s of database, %.1f MB archive) | — |\n", m.BareDumpS, res.BareDumpMBps, float64(m.BareDumpBytes)/1e6)
	fmt.Fprintf(&b, "| capydb backup: dump into the blob store | %.2f s (%.0f MB/s of database) | %.2f× bare pg_dump |\n", m.BackupDumpS, res.DumpMBps, res.DumpVsBare)
	fmt.Fprintf(&b, "| capydb backup: verification | %.2f s | +%.0f%% of the dump |\n", m.BackupVerifyS, 100*res.VerifyOverhead)
	fmt.Fprintf(&b, "| capydb backup: total (dump + verification) | %.2f s | %.2f× bare pg_dump |\n", m.BackupTotalS, res.TotalVsBare)
	fmt.Fprintf(&b, "| bare `pg_restore --jobs=2` into a new database | %.2f s | — |\n", m.BareRestoreS)
	fmt.Fprintf(&b, "| capydb restore into a new preview | %.2f s | %.2f× bare pg_restore |\n\n", m.PreviewRestoreS, res.RestoreVsBare)
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
