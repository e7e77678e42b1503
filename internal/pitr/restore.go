package pitr

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/runner"
)

// Errors a restore can end with that are the request's fault, not the system's.
var (
	// ErrNotReachable: the archive ends before the target.
	ErrNotReachable = errors.New("the target time is past the end of the archived WAL")
	// ErrNoBackup: no base backup stopped before the target.
	ErrNoBackup = errors.New("no base backup ends before the target time")
	// ErrNoDatabase: the database (this incarnation) did not exist at the target.
	ErrNoDatabase = errors.New("the project's database did not exist at the target time")
)

// RestoreParams describe extracting one database at a point in time.
type RestoreParams struct {
	// Key names the scratch directory (DataDir/tmp/pitr/<Key>): a retry
	// with the same key first removes what an earlier attempt left.
	Key string
	// DatabaseOID is the database to extract (its OID: a rename or a swap
	// makes a new incarnation, and the OID tells them apart).
	DatabaseOID uint32
	// Target is the point in time; recovery stops before the first commit after it.
	Target time.Time
	// Out is the file the custom-format dump is written to.
	Out string
	// Command, when set, receives pgBackRest's and pg_dump's results.
	Command func(runner.Result)
	// Phase, when set, is told what the restore is doing.
	Phase func(string)
}

// RestoreResult reports a finished extraction.
type RestoreResult struct {
	// ReplayedTo is the last transaction replayed (pg_last_xact_replay_timestamp).
	ReplayedTo *time.Time
	Database   string // its name at the target time
	Selective  bool   // --db-include was used (else the whole cluster was restored)
	Timings    map[string]time.Duration
}

// targetString is how pgBackRest and recovery_target_time get a time: UTC
// with an explicit offset (no offset would mean the server's time zone).
func targetString(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00" }

func (m *Manager) workDir(key string) string { return filepath.Join(m.tmpDir(), key) }

// RestoreDatabase restores the cluster's base backup before p.Target into a
// private scratch directory (only p.DatabaseOID's files, when the backup
// has it), replays WAL up to p.Target in a throwaway postmaster on a
// private unix socket (paused there: read-only, no new timeline), dumps
// the database to p.Out and removes the instance and its files, whatever
// the outcome.
func (m *Manager) RestoreDatabase(ctx context.Context, p RestoreParams) (*RestoreResult, error) {
	m.restoreMu.Lock()
	defer m.restoreMu.Unlock()
	phase := func(s string) {
		if p.Phase != nil {
			p.Phase(s)
		}
	}
	work := m.workDir(p.Key)
	if err := m.removeWork(work); err != nil {
		return nil, err
	}
	defer func() {
		if err := m.removeWork(work); err != nil {
			m.log.Warn("pitr: removing scratch directory", "dir", work, "err", err)
		}
	}()
	res := &RestoreResult{Timings: map[string]time.Duration{}, Selective: true}
	for _, d := range []string{work, filepath.Join(work, "data"), filepath.Join(work, "sock")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
		if err := m.cfg.Chown(d); err != nil {
			return nil, err
		}
	}
	if len(filepath.Join(work, "sock", ".s.PGSQL.5432")) > 107 {
		return nil, fmt.Errorf("the scratch directory %s is too long for a unix socket path", work)
	}
	phase("restoring_base_backup")
	start := time.Now()
	args := []string{"--pg1-path=" + filepath.Join(work, "data"), "--type=time", "--target=" + targetString(p.Target),
		"--target-action=pause", "--archive-mode=off", "--process-max=2"}
	r, err := m.backrest(ctx, "restore", append(args, "--db-include="+strconv.FormatUint(uint64(p.DatabaseOID), 10))...)
	if Code(err) == 80 {
		// The database is newer than the backup: restore everything.
		res.Selective = false
		phase("restoring_whole_cluster")
		if err := m.emptyDir(filepath.Join(work, "data")); err != nil {
			return nil, err
		}
		r, err = m.backrest(ctx, "restore", args...)
	}
	if p.Command != nil {
		p.Command(r)
	}
	switch {
	case Code(err) == 75:
		return nil, ErrNoBackup
	case err != nil:
		return nil, err
	}
	res.Timings["restore"] = time.Since(start)

	phase("replaying_wal")
	start = time.Now()
	inst, err := m.startInstance(ctx, work)
	if err != nil {
		return nil, err
	}
	defer inst.stop()
	conn, err := inst.waitPaused(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	res.Timings["replay"] = time.Since(start)
	if bad := inst.invalidPages(p.DatabaseOID); bad != "" {
		return nil, fmt.Errorf("WAL replay found invalid pages in the project's database (%s); the restore cannot be trusted", bad)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_last_xact_replay_timestamp()`).Scan(&res.ReplayedTo); err != nil {
		return nil, err
	}
	err = conn.QueryRow(ctx, `SELECT datname FROM pg_database WHERE oid = $1`, p.DatabaseOID).Scan(&res.Database)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoDatabase
	}
	if err != nil {
		return nil, err
	}

	phase("dumping")
	start = time.Now()
	out, err := os.OpenFile(p.Out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	dsn := "host=" + quoteDSN(filepath.Join(work, "sock")) + " port=5432 user=" + quoteDSN(m.cfg.AdminUser) + " dbname=" + quoteDSN(res.Database)
	dr, err := runner.Run(ctx, runner.Cmd{Name: filepath.Join(m.cfg.BinDir, "pg_dump"),
		Args: []string{"--dbname=" + dsn, "--format=custom", "--compress=1", "--no-subscriptions",
			"--no-security-labels", "--no-tablespaces"},
		Env: []string{"PGAPPNAME=capydb-pitr"}, Stdout: out, Credential: m.cfg.Credential})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if p.Command != nil {
		p.Command(dr)
	}
	if err != nil {
		os.Remove(p.Out)
		return nil, fmt.Errorf("while dumping %s from the recovery instance: %w", res.Database, err)
	}
	res.Timings["dump"] = time.Since(start)
	return res, nil
}

func quoteDSN(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`) + "'"
}

// instance is a running throwaway recovery postmaster.
type instance struct {
	m    *Manager
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func (m *Manager) startInstance(ctx context.Context, work string) (*instance, error) {
	logPath := filepath.Join(work, "postgres.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	hba := filepath.Join(work, "pg_hba.conf")
	// Only the postgres OS user reaches the 0700 socket directory.
	if err := os.WriteFile(hba, []byte("local all all trust\n"), 0o600); err != nil {
		return nil, err
	}
	for _, f := range []string{hba, logPath} {
		if err := m.cfg.Chown(f); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(filepath.Join(m.cfg.BinDir, "postgres"), "-D", filepath.Join(work, "data"),
		"-c", "listen_addresses=", "-c", "port=5432", "-c", "unix_socket_directories="+filepath.Join(work, "sock"),
		"-c", "unix_socket_permissions=0700", "-c", "hba_file="+hba, "-c", "ssl=off",
		"-c", "archive_mode=off", "-c", "ignore_invalid_pages=on", "-c", "fsync=off", "-c", "hot_standby=on",
		"-c", "logging_collector=off", "-c", "log_destination=stderr", "-c", "shared_buffers=128MB",
		"-c", "shared_preload_libraries=")
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGQUIT, Credential: m.cfg.Credential}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("while starting the recovery instance: %w", err)
	}
	inst := &instance{m: m, dir: work, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(inst.done) }()
	return inst, nil
}

// waitPaused waits until recovery paused at the target and returns a
// connection to the instance.
func (i *instance) waitPaused(ctx context.Context) (*pgx.Conn, error) {
	dsn := "host=" + quoteDSN(filepath.Join(i.dir, "sock")) + " port=5432 user=" + quoteDSN(i.m.cfg.AdminUser) +
		" dbname=postgres connect_timeout=5"
	for {
		select {
		case <-i.done:
			return nil, i.exitError()
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			continue // still starting or replaying up to consistency
		}
		var state string
		err = conn.QueryRow(ctx, `SELECT pg_get_wal_replay_pause_state()`).Scan(&state)
		if err == nil && state == "paused" {
			return conn, nil
		}
		conn.Close(ctx)
	}
}

func (i *instance) logText() string {
	b, _ := os.ReadFile(i.log)
	return string(b)
}

func (i *instance) exitError() error {
	text := i.logText()
	if strings.Contains(text, "recovery ended before configured recovery target was reached") {
		return ErrNotReachable
	}
	var last []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "FATAL") || strings.Contains(l, "PANIC") {
			last = append(last, l)
		}
	}
	if len(last) > 3 {
		last = last[len(last)-3:]
	}
	return fmt.Errorf("the recovery instance exited: %s", strings.Join(last, "; "))
}

// invalidPages returns the first "invalid page" line naming the target
// database (other databases' pages were not restored: their warnings are
// expected).
func (i *instance) invalidPages(oid uint32) string {
	needle := fmt.Sprintf("relation base/%d/", oid)
	sc := bufio.NewScanner(strings.NewReader(i.logText()))
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, needle) && (strings.Contains(l, "invalid") || strings.Contains(l, "uninitialized")) {
			return l
		}
	}
	return ""
}

// stop ends the instance at once: it is thrown away, nothing needs to be durable.
func (i *instance) stop() {
	if i.cmd.Process != nil {
		_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGQUIT)
	}
	select {
	case <-i.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-i.cmd.Process.Pid, syscall.SIGKILL)
		<-i.done
	}
}
