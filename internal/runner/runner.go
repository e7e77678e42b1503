// Package runner executes external programs (pg_dump, pg_restore, psql, ...)
// in one consistent way: minimal environment, bounded and scrubbed output
// capture, process-group cleanup on cancellation, and errors that carry the
// useful end of stderr without leaking credentials.
package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/capydb/capydb/internal/scrub"
)

// TailBytes is how much of the end of each output stream Result keeps.
const TailBytes = 8 << 10

// tailSlack is extra raw output kept before scrubbing and cut afterwards, so a
// secret straddling the start of the kept window is scrubbed whole and not
// left half visible.
const tailSlack = 1 << 10

// maxErrTail bounds the stderr excerpt in ExitError.Error.
const maxErrTail = 500

// Default timeouts; a Cmd may set its own.
const (
	defaultKillGrace = 5 * time.Second
	defaultPipeGrace = 2 * time.Second
)

// defaultPath is used when the server itself runs without PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// inheritedEnv lists the only variables passed through from our environment.
// Everything else must be given explicitly, so an operator's PGPASSWORD,
// PGHOST or cloud credentials never reach a command by accident.
var inheritedEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR"}

// Cmd describes one command to run.
type Cmd struct {
	Name string
	Args []string
	// Env holds extra KEY=VALUE entries appended to a minimal inherited
	// environment; later entries win. Values of variables whose names look
	// sensitive (PASSWORD, SECRET, TOKEN, ..._KEY) are scrubbed like Secrets.
	Env   []string
	Dir   string
	Stdin io.Reader
	// Stdout, when set, receives the whole standard output (e.g. a pg_dump
	// stream) instead of it being captured; Result.Stdout is then empty.
	// Run waits until everything has been written to it.
	Stdout io.Writer
	// Secrets are replaced with *** in captured output, errors and String.
	Secrets []string
	// Credential, when set, runs the command as another user.
	Credential *syscall.Credential
	// KillGrace is how long a cancelled command gets between SIGTERM and
	// SIGKILL to exit cleanly (pg_dump removes partial files, etc.);
	// 0 means 5 s.
	KillGrace time.Duration
	// PipeGrace bounds how long Run waits for captured output pipes to
	// close after the command exited, in case a background child inherited
	// them; 0 means 2 s.
	PipeGrace time.Duration
}

// Result describes a finished (or unstartable) command. Stdout and Stderr are
// the last TailBytes of each stream, scrubbed and made valid UTF-8 so they can
// be stored in a TEXT column.
type Result struct {
	// ExitCode is the exit status, 128+N when killed by signal N, and -1
	// when the command did not start.
	ExitCode int
	Stdout   string
	Stderr   string
	Duration time.Duration
}

// ExitError reports a command that ran and exited unsuccessfully.
type ExitError struct {
	Cmd      string
	ExitCode int
	// Stderr is the scrubbed tail of standard error (as in Result.Stderr).
	Stderr string
	// Signal is the signal that killed the command, or 0.
	Signal syscall.Signal
}

// Error gives the command, status and the last lines of stderr, which is
// where PostgreSQL tools print the reason for failing.
func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s exited with status %d", e.Cmd, e.ExitCode)
	if e.Signal != 0 {
		fmt.Fprintf(&b, " (signal: %v)", e.Signal)
	}
	if tail := lastLines(e.Stderr, maxErrTail); tail != "" {
		b.WriteString(": ")
		b.WriteString(tail)
	}
	return b.String()
}

// lastLines returns at most max bytes from the end of s, starting at a line
// boundary when one falls in that window, or else marked with "...".
func lastLines(s string, max int) string {
	s = strings.TrimSpace(s)
	if len(s) <= max {
		return s
	}
	window := s[len(s)-max:]
	if i := strings.IndexByte(window, '\n'); i >= 0 && i < len(window)-1 {
		return strings.TrimSpace(window[i+1:])
	}
	return "..." + trimToRuneStart(s[len(s)-(max-3):])
}

// trimToRuneStart drops UTF-8 continuation bytes left at the front by a cut.
func trimToRuneStart(s string) string {
	for i := 0; i < utf8.UTFMax && len(s) > 0 && !utf8.RuneStart(s[0]); i++ {
		s = s[1:]
	}
	return s
}

// String renders the command line, shell-quoted and scrubbed, for logs. The
// environment is left out since it is where credentials usually travel.
func (c Cmd) String() string {
	sc := c.scrubber()
	parts := make([]string, 0, 1+len(c.Args))
	for _, a := range append([]string{c.Name}, c.Args...) {
		parts = append(parts, shellQuote(sc.String(a)))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-+=:,./@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// scrubber combines the explicit secrets with sensitive environment values:
// a password handed over in PGPASSWORD must not come back through output.
func (c Cmd) scrubber() *scrub.Scrubber {
	sc := scrub.New(c.Secrets...)
	for _, kv := range c.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && sensitiveEnv(k) {
			sc.Add(v)
		}
	}
	return sc
}

func sensitiveEnv(key string) bool {
	k := strings.ToUpper(key)
	for _, w := range []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return strings.HasSuffix(k, "_KEY")
}

// environ builds the child environment: the inherited allowlist, then extra.
func environ(extra []string) []string {
	env := make([]string, 0, len(inheritedEnv)+len(extra)+1)
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		} else if k == "PATH" {
			env = append(env, "PATH="+defaultPath)
		}
	}
	return append(env, extra...)
}

// lookupEnv returns the value exec would see for key (the last one wins).
func lookupEnv(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// lookPath resolves name against the child's PATH, not ours, so Env can
// point at a specific PostgreSQL version's bin directory. Relative PATH
// entries are skipped, as exec.LookPath does, to avoid running ./pg_dump.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable file %q not found in PATH %s: %w", name, path, exec.ErrNotFound)
}

// Run runs c and waits for it.
//
// It returns *ExitError for a non-zero exit, an error wrapping ctx's error if
// ctx ended first (the command's whole process group gets SIGTERM, then
// SIGKILL after 5 s), and a wrapped error naming the program if it could not
// be started. The Result is filled in every case.
func Run(ctx context.Context, c Cmd) (Result, error) {
	start := time.Now()
	res := Result{ExitCode: -1}
	sc := c.scrubber()
	name := sc.String(c.Name)
	fail := func(err error) (Result, error) {
		res.Duration = time.Since(start)
		return res, scrubbed(sc, fmt.Errorf("runner: cannot start %s: %w", c.Name, err))
	}
	if err := ctx.Err(); err != nil {
		return fail(context.Cause(ctx))
	}

	// exec reports a bad Dir as "fork/exec <binary>: no such file", which
	// points at the wrong thing; check it first for a clear message.
	if c.Dir != "" {
		if fi, err := os.Stat(c.Dir); err != nil {
			return fail(fmt.Errorf("working directory: %w", err))
		} else if !fi.IsDir() {
			return fail(fmt.Errorf("working directory %s is not a directory", c.Dir))
		}
	}
	env := environ(c.Env)
	path, err := lookPath(c.Name, lookupEnv(env, "PATH"))
	if err != nil {
		return fail(err)
	}
	stdoutTail := NewTailBuffer(TailBytes + tailSlack)
	stderrTail := NewTailBuffer(TailBytes + tailSlack)
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string{c.Name}, c.Args...),
		Env:         env,
		Dir:         c.Dir,
		Stdin:       c.Stdin,
		Stdout:      stdoutTail,
		Stderr:      stderrTail,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true, Credential: c.Credential},
		WaitDelay:   cmp.Or(c.PipeGrace, defaultPipeGrace),
	}

	// A streamed stdout gets our own pipe and copier: exec's WaitDelay would
	// close the pipe under a slow consumer and silently truncate a dump.
	var streamDone chan error
	var streamR, streamW *os.File
	if c.Stdout != nil {
		if f, ok := c.Stdout.(*os.File); ok {
			cmd.Stdout = f
		} else {
			if streamR, streamW, err = os.Pipe(); err != nil {
				return fail(err)
			}
			cmd.Stdout = streamW
		}
	}

	if err := cmd.Start(); err != nil {
		if streamR != nil {
			streamR.Close()
			streamW.Close()
		}
		return fail(err)
	}
	if streamR != nil {
		streamW.Close() // the child has its copy; EOF comes when it (and its children) close it
		streamDone = make(chan error, 1)
		go func() {
			_, err := io.Copy(c.Stdout, streamR)
			streamR.Close() // on a write error this makes the child get EPIPE instead of blocking
			streamDone <- err
		}()
	}

	exited := make(chan struct{})
	var interrupted atomic.Bool
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		select {
		case <-exited: // finished at the same moment; nothing to stop
			return
		default:
		}
		interrupted.Store(true)
		pgid := cmd.Process.Pid // Setpgid: the group id is the leader's pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(cmp.Or(c.KillGrace, defaultKillGrace))
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
		}
		// Also reaches children that ignored SIGTERM or outlived the leader.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}()

	waitErr := cmd.Wait()
	var streamErr error
	if streamDone != nil {
		streamErr = <-streamDone
	}
	close(exited)
	<-watcherDone
	res.Duration = time.Since(start)

	var sig syscall.Signal
	if ps := cmd.ProcessState; ps != nil {
		res.ExitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sig = ws.Signal()
			res.ExitCode = 128 + int(sig)
		}
	}
	if c.Stdout == nil {
		res.Stdout = finishTail(stdoutTail, sc)
	}
	res.Stderr = finishTail(stderrTail, sc)

	switch {
	case interrupted.Load():
		return res, fmt.Errorf("%s stopped (exit status %d): %w", name, res.ExitCode, context.Cause(ctx))
	case streamErr != nil:
		// Checked before the exit status: a failed writer makes the command
		// die of SIGPIPE, and the writer's error is the actual cause.
		return res, scrubbed(sc, fmt.Errorf("%s: writing standard output: %w", c.Name, streamErr))
	case res.ExitCode != 0:
		return res, &ExitError{Cmd: name, ExitCode: res.ExitCode, Stderr: res.Stderr, Signal: sig}
	case waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay):
		// exec.ErrWaitDelay only means a background child kept captured
		// output open after a successful exit; the output we have is complete
		// as far as the command itself is concerned.
		return res, scrubbed(sc, fmt.Errorf("%s: %w", c.Name, waitErr))
	}
	return res, nil
}

// scrubbedError has a scrubbed message but still unwraps to the original
// error, so callers can test for exec.ErrNotFound, fs.ErrNotExist, etc.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func scrubbed(sc *scrub.Scrubber, err error) error {
	return &scrubbedError{msg: sc.String(err.Error()), err: err}
}

// finishTail scrubs the raw tail (with its slack) and then keeps the last
// TailBytes, as valid UTF-8.
func finishTail(b *TailBuffer, sc *scrub.Scrubber) string {
	raw := b.Bytes()
	if b.Truncated() {
		for i := 0; i < utf8.UTFMax && len(raw) > 0 && !utf8.RuneStart(raw[0]); i++ {
			raw = raw[1:]
		}
	}
	s := strings.ToValidUTF8(sc.String(string(raw)), "\uFFFD")
	if len(s) > TailBytes {
		s = trimToRuneStart(s[len(s)-TailBytes:])
	}
	return s
}
