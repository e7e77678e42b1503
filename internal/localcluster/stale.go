package localcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopStaleProcesses stops a postgres or pgbouncer left running on this data
// dir by a previous capydb that died without stopping them (e.g. SIGKILL
// before Pdeathsig was delivered, or a manually started server).
func (c *Cluster) stopStaleProcesses() error {
	for _, inst := range c.bouncerInstances() {
		if err := c.stopStaleBouncer(inst); err != nil {
			return err
		}
	}

	// The read replica first: it streams from the primary.
	if err := c.stopStalePostmaster(c.standbyData()); err != nil {
		return err
	}
	return c.stopStalePostmaster(c.pgData)
}

// stopStalePostmaster stops a postmaster left running on dir.
func (c *Cluster) stopStalePostmaster(dir string) error {
	pgPidFile := filepath.Join(dir, "postmaster.pid")
	if pid, ok := readPid(pgPidFile); ok && pidAlive(pid) {
		switch isOurPostmaster(pid, dir) {
		case matchYes:
			c.log.Warn("stopping a stale postmaster left over from an earlier run", "component", "postgres", "pid", pid)
			if err := terminate(pid, syscall.SIGINT); err != nil {
				return fmt.Errorf("while stopping stale postgres: %w", err)
			}
		case matchNo:
			// postgres would refuse to start because the pid is alive.
			c.log.Warn("removing postmaster.pid that names an unrelated live process", "component", "postgres", "pid", pid)
			os.Remove(pgPidFile)
		case matchUnknown:
			// Leave it to postgres, which reports a clear error if the pid
			// really is another postmaster.
		}
	}
	// A dead pid needs nothing (postgres replaces its own stale pid file),
	// but a zombie nobody reaped yet (in containers PID 1 may never reap it)
	// still passes postgres' kill(pid, 0) check and makes it refuse to start.
	// Postgres' shared-memory check still guards against surviving backends.
	if pid, ok := readPid(pgPidFile); ok && !pidAlive(pid) {
		os.Remove(pgPidFile)
	}
	return nil
}

// stopStaleBouncer stops one pgbouncer instance left running on this data dir.
func (c *Cluster) stopStaleBouncer(inst bouncerInstance) error {
	pidFile := filepath.Join(c.bouncerDir, inst.pid)
	pid, ok := readPid(pidFile)
	if !ok {
		return nil
	}
	switch {
	case !pidAlive(pid):
		os.Remove(pidFile) // pgbouncer refuses to start over a stale pid file
	case isOurBouncer(pid, filepath.Join(c.bouncerDir, inst.ini)):
		c.log.Warn("stopping a stale pgbouncer left over from an earlier run", "component", inst.name, "pid", pid)
		if err := terminate(pid, syscall.SIGINT); err != nil {
			return fmt.Errorf("while stopping stale %s: %w", inst.name, err)
		}
		os.Remove(pidFile)
	default:
		// The pid was reused by an unrelated process.
		os.Remove(pidFile)
	}
	return nil
}

// readPid reads the first line of a pid file.
func readPid(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// pidAlive reports whether pid exists and is not a zombie.
func pidAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Format: pid (comm) state ...; comm may contain spaces and parens.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

type match int

const (
	matchUnknown match = iota
	matchYes
	matchNo
)

// isOurPostmaster checks that pid is a postgres whose data dir is pgData:
// the postmaster chdirs into its data dir, and its command line names it.
func isOurPostmaster(pid int, pgData string) match {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return matchUnknown
	}
	cmd := string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	if !strings.Contains(cmd, "postgres") && !strings.Contains(cmd, "postmaster") {
		return matchNo
	}
	want, err := filepath.EvalSymlinks(pgData)
	if err != nil {
		want = pgData
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil {
		if cwd == want || cwd == pgData {
			return matchYes
		}
		return matchNo
	}
	if strings.Contains(cmd, pgData) || strings.Contains(cmd, want) {
		return matchYes
	}
	return matchUnknown
}

func isOurBouncer(pid int, iniPath string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	cmd := string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	return strings.Contains(cmd, "pgbouncer") && strings.Contains(cmd, iniPath)
}

// terminate sends sig to a process that is not our child, waits up to 30 s,
// then SIGKILLs it and waits again.
func terminate(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
	if waitGone(pid, stopGrace) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	if waitGone(pid, killGrace) {
		return nil
	}
	return fmt.Errorf("process %d did not exit after SIGKILL", pid)
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !pidAlive(pid) {
			return true
		}
		time.Sleep(25 * time.Millisecond)
	}
	return !pidAlive(pid)
}
