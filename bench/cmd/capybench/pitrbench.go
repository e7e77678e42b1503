package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// The PITR benchmark (-only pitr): a pgbench project, a base backup, then
// pgbench churn (the WAL a restore must replay); the target time is in the
// middle of the churn. Each round times, end to end:
//   - capydb's point-in-time restore into a new preview (one database:
//     selective pgBackRest restore, replay, pg_dump, load, swap);
//   - (a) the floor a whole-cluster PITR costs: pgBackRest restores the
//     whole cluster to the same target and a postmaster replays and promotes;
//   - (b) the logical path: restoring a capydb backup into a new preview.

var (
	pitrScale       = 10
	pitrOthersScale = 30
	pitrChurn       = 30 * time.Second
	pitrRounds      = 3
	// pitrUnbundled takes the benchmark's base backup without repo1-bundle
	// (does bundling cost the selective restore its advantage?).
	pitrUnbundled bool
)

func init() {
	allBenchmarks = append(allBenchmarks, "pitr")
	flag.IntVar(&pitrScale, "pitr-scale", pitrScale, "pgbench -i scale of the PITR benchmark's project")
	flag.IntVar(&pitrOthersScale, "pitr-others-scale", pitrOthersScale, "pgbench -i scale of another project on the same cluster (the neighbours a one-project restore skips; 0 = none)")
	flag.BoolVar(&pitrUnbundled, "pitr-unbundled", false, "take the benchmark's base backup with --no-repo1-bundle")
	flag.DurationVar(&pitrChurn, "pitr-churn", pitrChurn, "pgbench run after the base backup (its WAL is replayed); the target is in its middle")
	flag.IntVar(&pitrRounds, "pitr-rounds", pitrRounds, "rounds of (capydb PITR, full-cluster pgBackRest restore, logical restore); medians are reported")
}

// PITRRound is one interleaved round.
type PITRRound struct {
	PITRS float64 `json:"capydb_pitr_new_preview_s"`
	// The PITR's parts, from the job's progress phases (polled every 20 ms):
	// the request (window, heartbeat, WAL switch, archived), queueing, the
	// pgBackRest restore, start + replay, pg_dump, load + swap.
	PhasesS      map[string]float64 `json:"capydb_pitr_phases_s"`
	FullClusterS float64            `json:"full_cluster_pgbackrest_s"`
	LogicalS     float64            `json:"logical_restore_new_preview_s"`
}

// PITRResult is pitr.json.
type PITRResult struct {
	Meta
	Scale        int         `json:"scale"`
	DBBytes      int64       `json:"db_bytes"`
	ClusterBytes int64       `json:"cluster_bytes"`
	WALBytes     int64       `json:"wal_bytes_backup_to_end"`
	ReplayBytes  int64       `json:"wal_bytes_backup_to_target"`
	Rounds       []PITRRound `json:"rounds"`
	Median       PITRRound   `json:"median"`
	Targets      []Target    `json:"targets"`
	Notes        []string    `json:"notes"`
}

func runPITRBench(ctx context.Context, o *options) (*PITRResult, error) {
	res := &PITRResult{Meta: newMeta(o), Scale: pitrScale}
	res.Benchmark = "pitr"
	defer res.finish()
	pgbench, err := pgTool("pgbench")
	if err != nil {
		return nil, err
	}
	postgres, err := pgTool("postgres")
	if err != nil {
		return nil, err
	}
	srv, err := StartServer(ctx, o.bin, o.tmpBase, "pitr")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	c := NewClient(srv)
	pp, err := loadPgbenchProject(ctx, srv, "pitrbench", pitrScale)
	if err != nil {
		return nil, err
	}
	defer pp.Admin.Close(context.Background())
	admin := pp.Admin
	var others *pgbenchProject
	if pitrOthersScale > 0 {
		if others, err = loadPgbenchProject(ctx, srv, "pitrbench-others", pitrOthersScale); err != nil {
			return nil, err
		}
		defer others.Admin.Close(context.Background())
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("the benchmark runs pgBackRest as the postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	conf := filepath.Join(srv.DataDir, "pitr", "pgbackrest.conf")
	backrest := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "pgbackrest", append([]string{"--config=" + conf, "--stanza=capydb"}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = "/"
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pgbackrest %s: %v: %s", args[len(args)-1], err, tail(string(out), 400))
		}
		return nil
	}
	// The server's own first base backup (taken at start) must be done:
	// pgBackRest runs one backup at a time.
	for deadline := time.Now().Add(5 * time.Minute); ; {
		var st struct {
			BaseBackups int `json:"base_backups"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/projects/"+pp.ID+"/pitr", nil, &st); err != nil {
			return nil, err
		}
		if st.BaseBackups > 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the server took no base backup in 5 minutes")
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if err := admin.QueryRow(ctx, `SELECT pg_database_size($1), (SELECT sum(pg_database_size(oid)) FROM pg_database)::bigint`, pp.DB).
		Scan(&res.DBBytes, &res.ClusterBytes); err != nil {
		return nil, err
	}
	// A base backup with the project in it (the server's first one ran before it existed).
	logf("base backup (project %d MB, cluster %d MB)", res.DBBytes>>20, res.ClusterBytes>>20)
	var lsn0 string
	bargs := []string{"--type=full", "--start-fast", "backup"}
	if pitrUnbundled {
		bargs = append([]string{"--no-repo1-bundle"}, bargs...)
	}
	if err := backrest(bargs...); err != nil {
		return nil, err
	}
	if err := admin.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn0); err != nil {
		return nil, err
	}
	time.Sleep(1100 * time.Millisecond)
	logf("pgbench churn for %s", pitrChurn)
	secs := strconv.Itoa(int(pitrChurn.Seconds()))
	churn := exec.CommandContext(ctx, pgbench, "-n", "-c", "1", "-T", secs, pp.Conns.DirectURL)
	if err := churn.Start(); err != nil {
		return nil, err
	}
	var noise *exec.Cmd
	if others != nil {
		// The neighbours write too: their WAL is replayed by every restore.
		noise = exec.CommandContext(ctx, pgbench, "-n", "-c", "1", "-T", secs, others.Conns.DirectURL)
		if err := noise.Start(); err != nil {
			return nil, err
		}
	}
	time.Sleep(pitrChurn / 2)
	target := time.Now().UTC()
	var lsnT string
	_ = admin.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsnT)
	if err := churn.Wait(); err != nil {
		return nil, fmt.Errorf("pgbench: %w", err)
	}
	if noise != nil {
		if err := noise.Wait(); err != nil {
			return nil, fmt.Errorf("pgbench (neighbours): %w", err)
		}
	}
	if err := admin.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint, pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::bigint`,
		lsn0, lsnT).Scan(&res.WALBytes, &res.ReplayBytes); err != nil {
		return nil, err
	}
	logf("WAL since the backup: %d MB (%d MB up to the target)", res.WALBytes>>20, res.ReplayBytes>>20)
	// The logical path's backup (not timed).
	var created struct {
		Job Job `json:"job"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/projects/"+pp.ID+"/backups", map[string]any{"label": "pitrbench"}, &created); err != nil {
		return nil, err
	}
	if j, _, err := c.WaitJob(ctx, created.Job.ID, 50*time.Millisecond, 20*time.Minute); err != nil || j.State != "completed" {
		return nil, fmt.Errorf("backup: %v %v", err, j.State)
	}
	var list struct {
		Backups []struct {
			BackupKey string `json:"backup_key"`
			JobID     string `json:"job_id"`
		} `json:"backups"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/projects/"+pp.ID+"/backups", nil, &list); err != nil {
		return nil, err
	}
	key := ""
	for _, b := range list.Backups {
		if b.JobID == created.Job.ID {
			key = b.BackupKey
		}
	}

	var phases map[string]float64
	restoreToPreview := func(body map[string]any) (float64, error) {
		var r struct {
			Job Job `json:"job"`
		}
		t0 := time.Now()
		if err := c.do(ctx, http.MethodPost, "/v1/projects/"+pp.ID+"/restores", body, &r); err != nil {
			return 0, err
		}
		// Each phase's start, as first seen; the parts are the gaps.
		order := []string{"request", "queued", "restoring_base_backup", "restoring_whole_cluster", "replaying_wal", "dumping", "restoring", "done"}
		seen := map[string]time.Duration{"request": 0, "queued": time.Since(t0)}
		for {
			var j struct {
				Job struct {
					State    string         `json:"state"`
					Error    *string        `json:"error"`
					Progress map[string]any `json:"progress"`
				} `json:"job"`
			}
			if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+r.Job.ID, nil, &j); err != nil {
				return 0, err
			}
			if ph, _ := j.Job.Progress["phase"].(string); ph != "" {
				if _, ok := seen[ph]; !ok {
					seen[ph] = time.Since(t0)
				}
			}
			if j.Job.State == "failed" {
				return 0, fmt.Errorf("restore failed: %s", deref(j.Job.Error))
			}
			if j.Job.State == "completed" {
				break
			}
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				return 0, err
			}
		}
		seen["done"] = time.Since(t0)
		phases = map[string]float64{}
		for i := 0; i+1 < len(order); i++ {
			a, okA := seen[order[i]]
			if !okA {
				continue
			}
			for _, next := range order[i+1:] {
				if b, ok := seen[next]; ok {
					phases[order[i]] = round3((b - a).Seconds())
					break
				}
			}
		}
		s := time.Since(t0).Seconds()
		var jd struct {
			Job struct {
				PreviewDatabaseID string `json:"preview_database_id"`
			} `json:"job"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/jobs/"+r.Job.ID, nil, &jd); err == nil && jd.Job.PreviewDatabaseID != "" {
			_ = c.do(ctx, http.MethodDelete, "/v1/preview-databases/"+jd.Job.PreviewDatabaseID, nil, nil)
		}
		return round3(s), nil
	}
	for round := 1; round <= pitrRounds; round++ {
		var r PITRRound
		if r.PITRS, err = restoreToPreview(map[string]any{"restore_time": target.Format(time.RFC3339Nano),
			"preview_name": fmt.Sprintf("pitr-%d", round)}); err != nil {
			return nil, err
		}
		r.PhasesS = phases
		if r.FullClusterS, err = fullClusterRestore(ctx, o, backrest, postgres, cred, target); err != nil {
			return nil, err
		}
		if r.LogicalS, err = restoreToPreview(map[string]any{"backup_key": key, "preview_name": fmt.Sprintf("logical-%d", round)}); err != nil {
			return nil, err
		}
		logf("round %d: capydb PITR %.2f s %v; full-cluster pgBackRest restore + replay %.2f s; logical restore %.2f s",
			round, r.PITRS, r.PhasesS, r.FullClusterS, r.LogicalS)
		res.Rounds = append(res.Rounds, r)
	}
	med := func(get func(PITRRound) float64) float64 {
		v := make([]float64, len(res.Rounds))
		for i, r := range res.Rounds {
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
	res.Median = PITRRound{PITRS: med(func(r PITRRound) float64 { return r.PITRS }), PhasesS: map[string]float64{},
		FullClusterS: med(func(r PITRRound) float64 { return r.FullClusterS }),
		LogicalS:     med(func(r PITRRound) float64 { return r.LogicalS })}
	for ph := range res.Rounds[0].PhasesS {
		res.Median.PhasesS[ph] = med(func(r PITRRound) float64 { return r.PhasesS[ph] })
	}
	m := res.Median
	res.Targets = []Target{
		{Name: "one-project PITR (end to end) < full-cluster pgBackRest restore to the same target", Value: fmt.Sprintf("%.2f s vs %.2f s", m.PITRS, m.FullClusterS), Pass: m.PITRS < m.FullClusterS},
		{Name: "PITR vs logical restore of a backup (reported)", Value: fmt.Sprintf("%.2f×", m.PITRS/m.LogicalS), Pass: true},
	}
	res.Notes = append(res.Notes,
		"capydb PITR: POST /restores with restore_time → job completed (heartbeat + WAL switch, selective pgBackRest restore of the project's database, replay to the target in a private paused instance, pg_dump, load into a new preview, swap).",
		"Full-cluster floor: pgbackrest restore of every database to the same target + postmaster start, replay and promote (fsync=off); it extracts nothing, so it is a floor for the replay part only.",
		"Logical: restore of a capydb backup of the project (taken after the churn) into a new preview.",
		fmt.Sprintf("Medians of %d interleaved rounds; warm page cache; churn: one pgbench client on the project and one on its neighbour (scale %d) for %s.", len(res.Rounds), pitrOthersScale, pitrChurn))
	return res, nil
}

// fullClusterRestore restores the whole cluster to target into a scratch
// directory and times it until a postmaster there has replayed and promoted.
func fullClusterRestore(ctx context.Context, o *options, backrest func(...string) error, postgres string, cred *syscall.Credential, target time.Time) (float64, error) {
	dir, err := os.MkdirTemp(o.tmpBase, "capybench-pitr-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{dir, data, sock} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return 0, err
		}
		if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
			return 0, err
		}
	}
	hba := filepath.Join(dir, "pg_hba.conf")
	if err := os.WriteFile(hba, []byte("local all all trust\n"), 0o644); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := backrest("--pg1-path="+data, "--type=time", "--target="+target.Format("2006-01-02 15:04:05.999999")+"+00",
		"--target-action=promote", "--archive-mode=off", "--process-max=2", "restore"); err != nil {
		return 0, err
	}
	cmd := exec.Command(postgres, "-D", data, "-c", "listen_addresses=", "-c", "port=5432", "-c", "unix_socket_directories="+sock,
		"-c", "hba_file="+hba, "-c", "ssl=off", "-c", "archive_mode=off", "-c", "fsync=off", "-c", "shared_preload_libraries=",
		"-c", "logging_collector=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGQUIT)
		<-exited
	}()
	for {
		select {
		case <-exited:
			return 0, fmt.Errorf("the full-cluster recovery instance exited: %s", tail(logs.String(), 400))
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		conn, err := pgx.Connect(ctx, "host="+sock+" port=5432 user=capydb_admin dbname=postgres")
		if err != nil {
			continue
		}
		var rec bool
		err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&rec)
		conn.Close(ctx)
		if err == nil && !rec {
			return round3(time.Since(t0).Seconds()), nil
		}
	}
}

// appendPITRSummary adds the PITR section to summary.md when pitr.json exists.
func appendPITRSummary(dir string) {
	res, ok := loadResult[PITRResult](dir, "pitr.json")
	if !ok {
		return
	}
	m := res.Median
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Point-in-time recovery (%s)\n\n", res.Meta.Started.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "A `pgbench -i -s %d` project (%.0f MB) in a %.0f MB cluster; %.0f MB of WAL replayed from the base backup to the target. Medians of %d rounds.\n\n",
		res.Scale, float64(res.DBBytes)/1e6, float64(res.ClusterBytes)/1e6, float64(res.ReplayBytes)/1e6, len(res.Rounds))
	b.WriteString("| Operation | Time |\n|---|---|\n")
	fmt.Fprintf(&b, "| capydb PITR of the project into a new preview (end to end) | %.2f s |\n", m.PITRS)
	for _, ph := range []string{"request", "queued", "restoring_base_backup", "restoring_whole_cluster", "replaying_wal", "dumping", "restoring"} {
		if v, ok := m.PhasesS[ph]; ok {
			fmt.Fprintf(&b, "| — %s | %.2f s |\n", ph, v)
		}
	}
	fmt.Fprintf(&b, "| (a) full-cluster pgBackRest restore + replay + promote to the same target | %.2f s |\n", m.FullClusterS)
	fmt.Fprintf(&b, "| (b) logical backup restored into a new preview | %.2f s |\n\n", m.LogicalS)
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
		return
	}
	defer f.Close()
	_, _ = f.WriteString(b.String())
}
