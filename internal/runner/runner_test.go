package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

func sh(script string, args ...string) Cmd {
	return Cmd{Name: "sh", Args: append([]string{"-c", script, "sh"}, args...)}
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		script     string
		wantCode   int
		wantSignal syscall.Signal
		wantOut    string
		wantErr    string // substring of Error(); "" means success
	}{
		{"success", "echo hello", 0, 0, "hello\n", ""},
		{"true", "true", 0, 0, "", ""},
		{"exit 1", "echo out; echo 'pg_dump: error: boom' >&2; exit 1", 1, 0, "out\n", "sh exited with status 1: pg_dump: error: boom"},
		{"exit 3 no stderr", "exit 3", 3, 0, "", "sh exited with status 3"},
		{"exit 255", "exit 255", 255, 0, "", "status 255"},
		{"killed by signal", "kill -9 $$", 137, syscall.SIGKILL, "", "sh exited with status 137 (signal: killed)"},
		{"terminated", "kill -TERM $$", 143, syscall.SIGTERM, "", "status 143"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(t.Context(), sh(tt.script))
			if res.ExitCode != tt.wantCode {
				t.Fatalf("ExitCode = %d, want %d (err %v)", res.ExitCode, tt.wantCode, err)
			}
			if res.Stdout != tt.wantOut {
				t.Fatalf("Stdout = %q, want %q", res.Stdout, tt.wantOut)
			}
			if res.Duration <= 0 {
				t.Fatalf("Duration = %v", res.Duration)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var ee *ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("error %T %v is not *ExitError", err, err)
			}
			if ee.ExitCode != tt.wantCode || ee.Signal != tt.wantSignal || ee.Cmd != "sh" || ee.Stderr != res.Stderr {
				t.Fatalf("ExitError = %+v", ee)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Error() = %q, want it to contain %q", err.Error(), tt.wantErr)
			}
		})
	}
}

func TestRunStderrAndStdin(t *testing.T) {
	c := sh("cat; echo to-stderr >&2")
	c.Stdin = strings.NewReader("from stdin\n")
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "from stdin\n" || res.Stderr != "to-stderr\n" {
		t.Fatalf("Result = %+v", res)
	}
}

func TestRunNoStdinIsEmpty(t *testing.T) {
	res, err := Run(t.Context(), sh("cat"))
	if err != nil || res.Stdout != "" {
		t.Fatalf("Result = %+v, %v", res, err)
	}
}

func TestRunDir(t *testing.T) {
	dir := t.TempDir()
	c := sh("pwd")
	c.Dir = dir
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.EvalSymlinks(dir)
	if got := strings.TrimSpace(res.Stdout); got != dir && got != want {
		t.Fatalf("pwd = %q, want %q", got, dir)
	}
}

func TestRunTailTruncation(t *testing.T) {
	var full strings.Builder
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&full, "%d\n", i)
	}
	want := full.String()[full.Len()-TailBytes:]

	res, err := Run(t.Context(), sh("seq 1 20000; seq 1 20000 >&2; exit 2"))
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v", err)
	}
	if len(res.Stdout) != TailBytes || res.Stdout != want {
		t.Fatalf("Stdout: len %d, suffix %q", len(res.Stdout), res.Stdout[max(0, len(res.Stdout)-20):])
	}
	if res.Stderr != want {
		t.Fatalf("Stderr: len %d", len(res.Stderr))
	}
	msg := err.Error()
	prefix := "sh exited with status 2: "
	if !strings.HasPrefix(msg, prefix) || len(msg)-len(prefix) > maxErrTail || !strings.HasSuffix(msg, "\n20000") {
		t.Fatalf("Error() = %q (len %d)", msg[:min(80, len(msg))], len(msg))
	}
	if first := strings.TrimPrefix(msg, prefix); !strings.HasPrefix(first, strconv.Itoa(20000-len(strings.Split(first, "\n"))+1)+"\n") {
		t.Fatalf("error excerpt does not start at a line boundary: %q", first[:20])
	}
}

func TestRunTailUTF8(t *testing.T) {
	// 3-byte characters: the 8 KiB cut falls inside one of them.
	res, err := Run(t.Context(), sh(`i=0; while [ $i -lt 4000 ]; do printf '日'; i=$((i+1)); done`))
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.ValidString(res.Stdout) || strings.ContainsRune(res.Stdout, utf8.RuneError) {
		t.Fatal("Stdout is not clean UTF-8")
	}
	if len(res.Stdout) > TailBytes || len(res.Stdout) < TailBytes-3 {
		t.Fatalf("len = %d", len(res.Stdout))
	}
	res, _ = Run(t.Context(), sh(`printf 'ok \377\376 bytes'`))
	if res.Stdout != "ok \uFFFD bytes" && res.Stdout != "ok \uFFFD\uFFFD bytes" {
		t.Fatalf("invalid bytes not replaced: %q", res.Stdout)
	}
}

func TestRunSecretAtTruncationBoundary(t *testing.T) {
	secret := "SUPERSECRETVALUE123"
	// The raw last 8 KiB would begin inside the secret ("E123").
	script := fmt.Sprintf(`head -c 5000 /dev/zero | tr '\0' A; printf '%%s' "$1"; head -c %d /dev/zero | tr '\0' x`, TailBytes-4)
	c := sh(script, secret)
	c.Secrets = []string{secret}
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != TailBytes {
		t.Fatalf("len = %d", len(res.Stdout))
	}
	for i := 0; i <= len(secret)-3; i++ {
		if strings.Contains(res.Stdout, secret[i:]) {
			t.Fatalf("a suffix of the secret (%q) leaked", secret[i:])
		}
	}
	if !strings.Contains(res.Stdout, "***") {
		t.Fatalf("secret not masked at the start: %q", res.Stdout[:20])
	}
}

func TestRunScrubsSecrets(t *testing.T) {
	secret := "s3cr3t-Pa55word"
	c := sh(`echo "connecting with $1"; echo "postgres://app:other-pass@db/app"; echo "FATAL: bad password $1 for postgres://u:p@h" >&2; exit 1`, secret)
	c.Secrets = []string{secret}
	res, err := Run(t.Context(), c)
	if err == nil {
		t.Fatal("expected an error")
	}
	for name, s := range map[string]string{"Stdout": res.Stdout, "Stderr": res.Stderr, "error": err.Error(), "String": c.String()} {
		if strings.Contains(s, secret) || strings.Contains(s, "other-pass") || strings.Contains(s, "u:p@") {
			t.Fatalf("%s leaks a secret: %q", name, s)
		}
		if name != "String" && !strings.Contains(s, "***") {
			t.Fatalf("%s has no mask: %q", name, s)
		}
	}
	if res.Stdout != "connecting with ***\npostgres://app:***@db/app\n" {
		t.Fatalf("Stdout = %q", res.Stdout)
	}
	var ee *ExitError
	if !errors.As(err, &ee) || strings.Contains(ee.Stderr, secret) {
		t.Fatalf("ExitError = %+v", ee)
	}
}

func TestRunEnv(t *testing.T) {
	t.Setenv("CAPYDB_RUNNER_TEST_LEAK", "should-not-pass")
	t.Setenv("PGPASSWORD", "parent-password")
	t.Setenv("PGHOST", "parent-host")
	t.Setenv("LANG", "C.UTF-8")
	c := sh(`env | sort; echo "pw=$PGPASSWORD" >&2; exit 4`)
	c.Env = []string{"FOO=bar", "PGPASSWORD=child-password-123", "FOO=baz", "API_TOKEN=tok-abcdef-123"}
	res, err := Run(t.Context(), c)
	if res.ExitCode != 4 {
		t.Fatalf("ExitCode = %d (%v)", res.ExitCode, err)
	}
	env := res.Stdout
	for _, want := range []string{"FOO=baz\n", "PGPASSWORD=***\n", "API_TOKEN=***\n", "LANG=C.UTF-8\n", "PATH="} {
		if !strings.Contains(env, want) {
			t.Errorf("child env lacks %q:\n%s", want, env)
		}
	}
	for _, bad := range []string{"CAPYDB_RUNNER_TEST_LEAK", "parent-password", "PGHOST", "FOO=bar", "child-password-123", "tok-abcdef-123"} {
		if strings.Contains(env, bad) {
			t.Errorf("child env contains %q:\n%s", bad, env)
		}
	}
	all := res.Stdout + res.Stderr + err.Error() + c.String()
	if strings.Contains(all, "child-password-123") {
		t.Fatalf("PGPASSWORD value appears in the result: %q", all)
	}
	if res.Stderr != "pw=***\n" {
		t.Fatalf("Stderr = %q", res.Stderr)
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("PATH", "")
	os.Unsetenv("PATH")
	env := environ([]string{"X=1"})
	if lookupEnv(env, "PATH") != defaultPath || lookupEnv(env, "X") != "1" {
		t.Fatalf("environ = %q", env)
	}
}

func TestSensitiveEnv(t *testing.T) {
	tests := map[string]bool{
		"PGPASSWORD": true, "POSTGRES_PASSWORD": true, "db_passwd": true, "AWS_SECRET_ACCESS_KEY": true,
		"GITHUB_TOKEN": true, "API_KEY": true, "CAPYDB_SECRET_KEY": true,
		"PGHOST": false, "PATH": false, "PGSSLKEY": false, "KEYBOARD": false, "PGUSER": false,
	}
	for k, want := range tests {
		if got := sensitiveEnv(k); got != want {
			t.Errorf("sensitiveEnv(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestRunPathFromEnv(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "capydb-fake-tool")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho fake \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := Cmd{Name: "capydb-fake-tool", Args: []string{"a b"}, Env: []string{"PATH=" + dir + ":/usr/bin:/bin"}}
	res, err := Run(t.Context(), c)
	if err != nil || res.Stdout != "fake a b\n" {
		t.Fatalf("Result = %+v, %v", res, err)
	}
	// Not found with the default PATH.
	c.Env = nil
	if _, err := Run(t.Context(), c); !errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestRunCannotStart(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	tests := []struct {
		name    string
		cmd     Cmd
		is      error
		mention string
	}{
		{"not in PATH", Cmd{Name: "capydb-no-such-binary"}, exec.ErrNotFound, "capydb-no-such-binary"},
		{"missing path", Cmd{Name: filepath.Join(dir, "missing-tool")}, fs.ErrNotExist, "missing-tool"},
		{"not executable", Cmd{Name: notExec}, fs.ErrPermission, "not-executable"},
		{"bad dir", Cmd{Name: "true", Dir: filepath.Join(dir, "no-such-dir")}, fs.ErrNotExist, "no-such-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(t.Context(), tt.cmd)
			if err == nil {
				t.Fatal("expected an error")
			}
			var ee *ExitError
			if errors.As(err, &ee) {
				t.Fatalf("got ExitError %v for a command that did not start", err)
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("err %q does not mention %q", err, tt.mention)
			}
			if res.ExitCode != -1 || res.Duration <= 0 {
				t.Fatalf("Result = %+v", res)
			}
		})
	}
}

func TestRunContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	marker := filepath.Join(t.TempDir(), "ran")
	res, err := Run(ctx, Cmd{Name: "touch", Args: []string{marker}})
	if !errors.Is(err, context.Canceled) || res.ExitCode != -1 {
		t.Fatalf("Result = %+v, err = %v", res, err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("command ran although ctx was already cancelled")
	}
}

// processGone reports whether pid has exited (a zombie counts: it no longer
// runs, and a container init may be slow to reap it).
func processGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d is still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if s := strings.TrimSpace(string(data)); strings.HasSuffix(string(data), "\n") && s != "" {
			pid, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatal("pid file not written")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunCancelKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The grandchild sleep holds stdout too, so Run also depends on it dying.
	res, err := Run(ctx, sh(`sleep 60 & echo $! > "$1"; sleep 60`, pidFile))
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		t.Fatalf("cancellation reported as ExitError: %v", err)
	}
	if elapsed > 3*time.Second {
		t.Fatalf("Run took %v after cancellation", elapsed)
	}
	if res.ExitCode != 128+int(syscall.SIGTERM) || res.Duration <= 0 {
		t.Fatalf("Result = %+v", res)
	}
	waitGone(t, readPid(t, pidFile))
}

func TestRunCancelEscalatesToSIGKILL(t *testing.T) {
	const killGrace = 300 * time.Millisecond
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		// Cancel once the script is running (and has installed its trap).
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if data, _ := os.ReadFile(pidFile); strings.HasSuffix(string(data), "\n") {
				break
			}
		}
		cancel()
	}()
	start := time.Now()
	// Ignored signals are inherited, so neither sh nor its sleeps die on TERM.
	c := sh(`trap '' TERM; sleep 60 & echo $! > "$1"; sleep 60`, pidFile)
	c.KillGrace = killGrace
	res, err := Run(ctx, c)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if elapsed := time.Since(start); elapsed < killGrace || elapsed > 3*time.Second {
		t.Fatalf("Run took %v, want about %v", elapsed, killGrace)
	}
	if res.ExitCode != 128+int(syscall.SIGKILL) {
		t.Fatalf("ExitCode = %d", res.ExitCode)
	}
	waitGone(t, readPid(t, pidFile))
}

func TestRunCancelStreamedStdout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	var out bytes.Buffer
	c := sh("echo partial; sleep 60")
	c.Stdout = &out
	_, err := Run(ctx, c)
	if !errors.Is(err, context.DeadlineExceeded) || out.String() != "partial\n" {
		t.Fatalf("err = %v, out = %q", err, out.String())
	}
}

func TestRunBackgroundChildHoldingOutput(t *testing.T) {
	start := time.Now()
	c := sh(`sleep 30 & echo $!`)
	c.PipeGrace = 200 * time.Millisecond
	res, err := Run(t.Context(), c)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Result = %+v, err = %v", res, err)
	}
	if pid, perr := strconv.Atoi(strings.TrimSpace(res.Stdout)); perr == nil {
		syscall.Kill(pid, syscall.SIGKILL)
	} else {
		t.Fatalf("Stdout = %q", res.Stdout)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Run waited for the background child")
	}
}

// slowWriter accepts data only after a delay, like an upload stream.
type slowWriter struct {
	delay time.Duration
	buf   bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(w.delay)
	return w.buf.Write(p)
}

func TestRunStreamedStdoutIsComplete(t *testing.T) {
	w := &slowWriter{delay: 5 * time.Millisecond}
	c := sh("seq 1 50000") // ~290 KB: far more than the pipe buffer
	c.PipeGrace = 10 * time.Millisecond
	c.Stdout = w
	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "" {
		t.Fatalf("streamed stdout was also captured: %d bytes", len(res.Stdout))
	}
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	if len(lines) != 50000 || lines[49999] != "50000" {
		t.Fatalf("streamed output truncated: %d lines", len(lines))
	}
}

func TestRunStreamedStdoutToFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := sh("echo to-file")
	c.Stdout = f
	if _, err := Run(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(f.Name())
	if string(data) != "to-file\n" {
		t.Fatalf("file = %q", data)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRunStreamedStdoutWriteError(t *testing.T) {
	c := Cmd{Name: "yes", Stdout: failingWriter{}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res, err := Run(ctx, c)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("child kept running after the writer failed")
	}
	if err == nil || err.Error() != "yes: writing standard output: disk full" {
		t.Fatalf("err = %v", err)
	}
	if res.ExitCode != 128+int(syscall.SIGPIPE) {
		t.Fatalf("ExitCode = %d", res.ExitCode)
	}
}

func TestRunCredential(t *testing.T) {
	c := Cmd{Name: "id", Args: []string{"-u"}, Credential: &syscall.Credential{
		Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: true,
	}}
	res, err := Run(t.Context(), c)
	if err != nil || strings.TrimSpace(res.Stdout) != strconv.Itoa(os.Getuid()) {
		t.Fatalf("Result = %+v, err = %v", res, err)
	}
}
