package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	stopGrace      = 30 * time.Second // SIGINT → escalation
	killGrace      = 10 * time.Second // escalation → SIGKILL
	restartMin     = time.Second
	restartMax     = 30 * time.Second
	healthyRunTime = 60 * time.Second // a run this long resets the backoff
)

var errStopping = errors.New("cluster is stopping")

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

// spawnLoop starts every child from one locked OS thread. Pdeathsig fires
// when the *thread* that forked the child exits, not the process, so this
// thread must outlive the children: it is never unlocked and only ends after
// Stop closed spawnCh.
func (c *Cluster) spawnLoop() {
	runtime.LockOSThread()
	for r := range c.spawnCh {
		r.res <- r.cmd.Start()
	}
}

func (c *Cluster) spawn(cmd *exec.Cmd) error {
	res := make(chan error, 1)
	c.spawnCh <- spawnReq{cmd: cmd, res: res}
	return <-res
}

// proc is one run of a child process.
type proc struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed after Wait returned
	err     error         // Wait's result, valid after done
}

// child is a supervised program (postgres or pgbouncer) and its current run.
type child struct {
	c      *Cluster
	name   string
	path   string
	args   []string
	dir    string
	pdeath syscall.Signal
	tail   *tailBuffer
	// preStart runs before every spawn (e.g. to clear a dead run's pid file).
	preStart func()

	mu       sync.Mutex
	cur      *proc
	stopping bool

	superDone chan struct{} // closed when the supervisor goroutine returned; nil if none
}

func (c *Cluster) newChild(name, path string, args []string, dir string, pdeath syscall.Signal) *child {
	return &child{c: c, name: name, path: path, args: args, dir: dir, pdeath: pdeath, tail: newTailBuffer(40)}
}

// start spawns a new run unless the child is being stopped.
func (ch *child) start() (*proc, error) {
	cmd := exec.Command(ch.path, ch.args...)
	cmd.Dir = ch.dir
	cmd.Env = childEnv()
	cmd.Stdout = &lineLogger{log: ch.c.log, component: ch.name, stream: "stdout"}
	cmd.Stderr = &lineLogger{log: ch.c.log, component: ch.name, stream: "stderr", tail: ch.tail, onLine: ch.authWatcher()}
	// Descendants that keep the pipes open must not block Wait forever.
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig: ch.pdeath,
		// Own process group: a terminal's Ctrl-C must reach only capydb,
		// which then stops the children in order (pgbouncer first).
		Setpgid: true,
	}
	if ch.c.owner != nil {
		cmd.SysProcAttr.Credential = ch.c.owner.credential()
	}

	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.stopping {
		return nil, errStopping
	}
	if ch.preStart != nil {
		ch.preStart()
	}
	if err := ch.c.spawn(cmd); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	ch.cur = p
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	ch.c.log.Info("started "+ch.name, "component", ch.name, "pid", cmd.Process.Pid)
	return p, nil
}

// authWatcher passes a pgbouncer's failed-login lines to OnAuthFailure
// (postgres logs to jsonlog files, which internal/pglogs reads).
func (ch *child) authWatcher() func(string) {
	hook := ch.c.cfg.OnAuthFailure
	if hook == nil || ch.name == "postgres" {
		return nil
	}
	return func(line string) {
		p := ch.current()
		if p == nil || p.cmd.Process == nil {
			return
		}
		if f, ok := parseBouncerAuthFailure(line, p.cmd.Process.Pid); ok {
			f.Source = ch.name
			hook(f)
		}
	}
}

func (ch *child) current() *proc {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.cur
}

func (ch *child) isStopping() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.stopping
}

// signal sends sig to the current run if it is still running.
func (ch *child) signal(sig syscall.Signal) error {
	p := ch.current()
	if p == nil {
		return errors.New(ch.name + " is not running")
	}
	select {
	case <-p.done:
		return errors.New(ch.name + " is not running")
	default:
	}
	return p.cmd.Process.Signal(sig)
}

func (ch *child) superviseInBackground() {
	ch.superDone = make(chan struct{})
	go func() {
		defer close(ch.superDone)
		ch.supervise()
	}()
}

func (ch *child) waitSupervisor() {
	if ch.superDone != nil {
		<-ch.superDone
	}
}

// supervise restarts the child whenever it exits outside Stop, with
// exponential backoff that resets after a long enough healthy run.
func (ch *child) supervise() {
	backoff := restartMin
	p := ch.current()
	for {
		select {
		case <-p.done:
		case <-ch.c.stopCh:
			return
		}
		if ch.isStopping() {
			return
		}
		if time.Since(p.started) >= healthyRunTime {
			backoff = restartMin
		}
		ch.c.log.Error(ch.name+" exited unexpectedly; restarting", "component", ch.name,
			"error", exitDescription(p.err), "ran_for", time.Since(p.started).Round(time.Millisecond), "restart_in", backoff)
		for {
			select {
			case <-time.After(backoff):
			case <-ch.c.stopCh:
				return
			}
			backoff = min(backoff*2, restartMax)
			np, err := ch.start()
			if errors.Is(err, errStopping) {
				return
			}
			if err != nil {
				ch.c.log.Error("could not restart "+ch.name, "component", ch.name, "error", err, "restart_in", backoff)
				continue
			}
			p = np
			break
		}
	}
}

// stop marks the child as stopping (no more restarts), sends sig, and
// escalates to escalate and then SIGKILL when it does not exit in time.
func (ch *child) stop(ctx context.Context, sig, escalate syscall.Signal) error {
	ch.mu.Lock()
	ch.stopping = true
	p := ch.cur
	ch.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	if waitDone(ctx, p.done, stopGrace) {
		return nil
	}
	ch.c.log.Warn(ch.name+" did not stop in time; escalating", "component", ch.name, "signal", escalate.String())
	_ = p.cmd.Process.Signal(escalate)
	if waitDone(context.Background(), p.done, killGrace) {
		return nil
	}
	ch.c.log.Warn(ch.name+" still running; killing", "component", ch.name)
	_ = p.cmd.Process.Kill()
	if waitDone(context.Background(), p.done, killGrace) {
		return nil
	}
	return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", ch.name, p.cmd.Process.Pid)
}

// waitDone waits for done up to d or until ctx ends; reports whether done closed.
func waitDone(ctx context.Context, done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	select {
	case <-done:
		return true
	default:
		return false
	}
}

func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// childEnv is a minimal environment: the children must not inherit secrets
// such as CAPYDB_SECRET_KEY or database URLs from our environment.
func childEnv() []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"}
	if tz, ok := os.LookupEnv("TZ"); ok {
		env = append(env, "TZ="+tz)
	}
	return env
}

// lineLogger turns a child's output stream into one slog record per line.
type lineLogger struct {
	log       *slog.Logger
	component string
	stream    string
	tail      *tailBuffer
	buf       []byte
	// onLine sees every complete line (the auth-failure watcher).
	onLine func(string)
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(l.buf[:i]), "\r")
		l.buf = l.buf[i+1:]
		if line == "" {
			continue
		}
		if l.tail != nil {
			l.tail.add(line)
		}
		if l.onLine != nil {
			l.onLine(line)
		}
		l.log.Log(context.Background(), lineLevel(line), line, "component", l.component, "stream", l.stream)
	}
	if len(l.buf) > 64<<10 { // pathological line without newline
		l.log.Info(string(l.buf), "component", l.component, "stream", l.stream)
		l.buf = l.buf[:0]
	}
	return len(b), nil
}

// lineLevel maps the severity word both programs print to a slog level.
// Postgres prints "LOG:  …", "FATAL:  …"; pgbouncer prints "… [pid] LOG …".
func lineLevel(line string) slog.Level {
	switch {
	case strings.Contains(line, "PANIC"):
		return slog.LevelError
	case strings.Contains(line, "FATAL"), strings.Contains(line, "ERROR"), strings.Contains(line, "WARNING"):
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

// tailBuffer keeps the last lines of a child's stderr for startup errors.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func newTailBuffer(n int) *tailBuffer { return &tailBuffer{max: n} }

func (t *tailBuffer) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
