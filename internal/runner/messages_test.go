package runner

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

// What errors and command strings say: messages, UTF-8 tails, redaction.

func TestExitErrorMessage(t *testing.T) {
	long := strings.Repeat("x", 600)
	var lines []string
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("pg_restore: line %02d", i))
	}
	tests := []struct {
		name string
		err  ExitError
		want string
	}{
		{"no stderr", ExitError{Cmd: "pg_dump", ExitCode: 1}, "pg_dump exited with status 1"},
		{"whitespace stderr", ExitError{Cmd: "pg_dump", ExitCode: 1, Stderr: " \n\n"}, "pg_dump exited with status 1"},
		{"one line", ExitError{Cmd: "psql", ExitCode: 2, Stderr: "psql: error: connection refused\n"},
			"psql exited with status 2: psql: error: connection refused"},
		{"several short lines", ExitError{Cmd: "psql", ExitCode: 3, Stderr: "a\nb\n"}, "psql exited with status 3: a\nb"},
		{"signal", ExitError{Cmd: "pg_dump", ExitCode: 137, Signal: syscall.SIGKILL}, "pg_dump exited with status 137 (signal: killed)"},
		{"long single line", ExitError{Cmd: "x", ExitCode: 1, Stderr: long + "END"},
			"x exited with status 1: ..." + (long + "END")[len(long)+3-(maxErrTail-3):]},
		{"many lines keep whole last lines", ExitError{Cmd: "pg_restore", ExitCode: 1, Stderr: strings.Join(lines, "\n")},
			"pg_restore exited with status 1: " + strings.Join(lines[100-25:], "\n")}, // 25 lines of 20 bytes fit in 500
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.err.Error()
			if got != tt.want {
				t.Fatalf("Error()\n got %q\nwant %q", got, tt.want)
			}
			if i := strings.Index(got, ": "); i >= 0 && len(got)-i-2 > maxErrTail {
				t.Fatalf("excerpt longer than %d: %d", maxErrTail, len(got)-i-2)
			}
		})
	}
}

func TestLastLinesUTF8(t *testing.T) {
	s := strings.Repeat("é", 400) // 800 bytes, no newline
	got := lastLines(s, maxErrTail)
	if !utf8.ValidString(got) || len(got) > maxErrTail || !strings.HasPrefix(got, "...é") {
		t.Fatalf("lastLines = %q (len %d)", got, len(got))
	}
}

func TestCmdString(t *testing.T) {
	tests := []struct {
		name string
		cmd  Cmd
		want string
	}{
		{"plain", Cmd{Name: "pg_dump", Args: []string{"-Fc", "--no-owner", "-d", "app"}}, "pg_dump -Fc --no-owner -d app"},
		{"quoting", Cmd{Name: "psql", Args: []string{"-c", "SELECT 'a'", ""}}, `psql -c 'SELECT '\''a'\''' ''`},
		{"url", Cmd{Name: "pg_dump", Args: []string{"postgres://app:pw@db:5432/app"}}, "pg_dump 'postgres://app:***@db:5432/app'"},
		{"conninfo", Cmd{Name: "psql", Args: []string{"host=db password='a b'"}}, "psql 'host=db password=***'"},
		{"known secret", Cmd{Name: "tool", Args: []string{"--token", "abcdefgh123"}, Secrets: []string{"abcdefgh123"}}, "tool --token '***'"},
		{"env secret", Cmd{Name: "tool", Args: []string{"--pw=envsecret99"}, Env: []string{"PGPASSWORD=envsecret99"}}, "tool '--pw=***'"},
		{"env not shown", Cmd{Name: "tool", Env: []string{"PGHOST=db"}}, "tool"},
		{"sql", Cmd{Name: "psql", Args: []string{"-c", "ALTER ROLE x PASSWORD 'abcdef'"}}, `psql -c 'ALTER ROLE x PASSWORD '\''***'\'''`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cmd.String(); got != tt.want {
				t.Fatalf("String()\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestRunErrorScrubbed(t *testing.T) {
	// The name itself carries a URL with a password: nothing may echo it.
	res, err := Run(t.Context(), Cmd{Name: "/nonexistent/postgres://u:pw123456@h", Secrets: []string{"pw123456"}})
	if err == nil || strings.Contains(err.Error(), "pw123456") {
		t.Fatalf("err = %v", err)
	}
	if res.ExitCode != -1 {
		t.Fatalf("Result = %+v", res)
	}
}
