package pitr

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Reap stops and removes what restores left behind when capydb died in the
// middle of one (a recovery postmaster, its scratch directory). Call it
// before any restore can run.
func (m *Manager) Reap() error {
	dirs, err := filepath.Glob(filepath.Join(m.tmpDir(), "*"))
	if err != nil {
		return err
	}
	var errs []string
	for _, d := range dirs {
		if err := m.removeWork(d); err != nil {
			errs = append(errs, err.Error())
		} else {
			m.log.Info("pitr: removed a leftover restore", "dir", d)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("pitr: %s", strings.Join(errs, "; "))
	}
	return nil
}

// removeWork stops a recovery postmaster still running in work (checked
// by its command line, so a recycled pid is never signalled) and removes
// the directory; the dump next to it is the caller's.
func (m *Manager) removeWork(work string) error {
	pidFile := filepath.Join(work, "data", "postmaster.pid")
	if b, err := os.ReadFile(pidFile); err == nil {
		first, _, _ := strings.Cut(string(b), "\n")
		if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 1 && runsIn(pid, work) {
			_ = syscall.Kill(pid, syscall.SIGQUIT)
			deadline := time.Now().Add(15 * time.Second)
			for runsIn(pid, work) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if runsIn(pid, work) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	// A pgBackRest restore or pg_dump the dead server started outlives it
	// (they are not the server's process group): end it before removing
	// the directory it writes to.
	killProcessesIn(work)
	if err := os.RemoveAll(work); err != nil {
		return fmt.Errorf("while removing %s: %w", work, err)
	}
	return nil
}

// killProcessesIn SIGKILLs every live process whose command line names dir
// and waits (up to 5 s) until none is left.
func killProcessesIn(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := processesIn(dir)
		if len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processesIn lists the live processes (other than this one) whose command
// line names dir.
func processesIn(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if runsIn(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// runsIn reports whether pid is a live process whose command line names dir.
func runsIn(pid int, dir string) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// A zombie (state Z) is gone for our purposes.
		if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
			return false
		}
	}
	return bytes.Contains(b, []byte(dir))
}

// emptyDir removes dir's contents and keeps dir.
func (m *Manager) emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
