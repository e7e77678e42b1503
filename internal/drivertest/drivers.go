// Package drivertest runs real client drivers (pgx, node-postgres, psycopg 3)
// against the embedded cluster's URLs under concurrency and counts errors
// and wrong answers. Its tests prove the pooled URL works with each
// driver's prepared statements, and what the session-mode port keeps.
//
// The node and python programs live in tools/node/pg and tools/python.
package drivertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/capydb/capydb/internal/nodetools"
	"github.com/jackc/pgx/v5"
)

// Result counts what a driver run saw. Every answer is checked.
type Result struct {
	Queries    int    `json:"queries"`
	Errors     int    `json:"errors"`
	Wrong      int    `json:"wrong"`
	FirstError string `json:"first_error"`
}

func (r Result) String() string {
	return fmt.Sprintf("%d queries, %d errors, %d wrong answers (first: %q)", r.Queries, r.Errors, r.Wrong, r.FirstError)
}

// Target is one database endpoint.
type Target struct {
	Host, User, Password, Database string
	Port                           int
	CAFile                         string // CA of the server certificate
}

// URL is the libpq-style URL with sslmode=require, plus extra query parameters.
func (t Target) URL(extra url.Values) string {
	q := url.Values{"sslmode": {"require"}}
	for k, v := range extra {
		q[k] = v
	}
	// Spaces as %20: libpq and pgx do not read "+" as a space in a URL.
	u := url.URL{Scheme: "postgres", User: url.UserPassword(t.User, t.Password),
		Host: net.JoinHostPort(t.Host, strconv.Itoa(t.Port)), Path: "/" + t.Database,
		RawQuery: strings.ReplaceAll(q.Encode(), "+", "%20")}
	return u.String()
}

// RepoRoot is the module root (where tools/ lives).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Query returns the i-th statement of client id and the answer it must
// give for v: even queries share one text across clients (so statement
// names collide), odd ones are the client's own (so running another
// client's statement gives a wrong answer, not just an error).
func Query(id, i int) (sql string, add int) {
	if i%2 == 0 {
		return "select $1::int + 1", 1
	}
	return fmt.Sprintf("select $1::int + %d", id), id
}

// Pgx runs clients×queries Query statements with pgx in the given
// default_query_exec_mode ("" = pgx's default, cache_statement).
func Pgx(ctx context.Context, t Target, mode string, clients, queries int) Result {
	extra := url.Values{}
	if mode != "" {
		extra.Set("default_query_exec_mode", mode)
	}
	var mu sync.Mutex
	var res Result
	fail := func(wrong bool, msg string) {
		mu.Lock()
		defer mu.Unlock()
		if wrong {
			res.Wrong++
		} else {
			res.Errors++
		}
		if res.FirstError == "" {
			res.FirstError = msg
		}
	}
	var wg sync.WaitGroup
	for id := 1; id <= clients; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, t.URL(extra))
			if err != nil {
				fail(false, "connect: "+err.Error())
				return
			}
			defer conn.Close(context.Background())
			for i := range queries {
				v := id*100000 + i
				mu.Lock()
				res.Queries++
				mu.Unlock()
				sql, add := Query(id, i)
				var n int
				if err := conn.QueryRow(ctx, sql, v).Scan(&n); err != nil {
					fail(false, err.Error())
				} else if n != v+add {
					fail(true, fmt.Sprintf("got %d for %d", n, v))
				}
			}
		}()
	}
	wg.Wait()
	return res
}

// ErrNoTool is returned when node/npm or the system python is missing.
var ErrNoTool = errors.New("driver tool missing")

// NodePG runs tools/node/pg/prepared.js (node-postgres named statements),
// installing its locked dependencies with `npm ci` first when needed.
func NodePG(ctx context.Context, t Target, clients, queries int) (Result, error) {
	dir := filepath.Join(RepoRoot(), "tools", "node", "pg")
	node, err := exec.LookPath("node")
	if err != nil {
		return Result{}, fmt.Errorf("%w: node is not installed (scripts/ensure-deps.sh installs npm, which brings it)", ErrNoTool)
	}
	if err := nodetools.Install(dir); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrNoTool, err)
	}
	arg, _ := json.Marshal(map[string]any{"host": t.Host, "port": t.Port, "user": t.User, "password": t.Password,
		"database": t.Database, "ca_file": t.CAFile, "clients": clients, "queries": queries})
	return runJSON(exec.CommandContext(ctx, node, filepath.Join(dir, "prepared.js"), string(arg)))
}

// Psycopg runs tools/python/psycopg_prepared.py with Debian's python3 and
// python3-psycopg (psycopg 3 server-side prepared statements).
func Psycopg(ctx context.Context, t Target, clients, queries int) (Result, error) {
	py := "/usr/bin/python3"
	if out, err := exec.CommandContext(ctx, py, "-c", "import psycopg").CombinedOutput(); err != nil {
		return Result{}, fmt.Errorf("%w: %s cannot import psycopg (run scripts/ensure-deps.sh, which installs python3-psycopg): %v %s", ErrNoTool, py, err, out)
	}
	script := filepath.Join(RepoRoot(), "tools", "python", "psycopg_prepared.py")
	return runJSON(exec.CommandContext(ctx, py, script, t.URL(nil), strconv.Itoa(clients), strconv.Itoa(queries)))
}

func runJSON(cmd *exec.Cmd) (Result, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Result{}, fmt.Errorf("%s: %w\n%s", filepath.Base(cmd.Args[1]), err, stderr.String())
	}
	var r Result
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &r); err != nil {
		return Result{}, fmt.Errorf("%s printed %q: %w", filepath.Base(cmd.Args[1]), stdout.String(), err)
	}
	return r, nil
}

// SetLeak has each client SET statement_timeout to its own value once and
// then read it back queries times; a read showing another value (lost, or
// another client's) counts as wrong.
func SetLeak(ctx context.Context, t Target, clients, queries int) Result {
	var mu sync.Mutex
	var res Result
	var wg sync.WaitGroup
	for id := 1; id <= clients; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			note := func(wrong bool, msg string) {
				mu.Lock()
				defer mu.Unlock()
				if wrong {
					res.Wrong++
				} else {
					res.Errors++
				}
				if res.FirstError == "" {
					res.FirstError = msg
				}
			}
			conn, err := pgx.Connect(ctx, t.URL(nil))
			if err != nil {
				note(false, "connect: "+err.Error())
				return
			}
			defer conn.Close(context.Background())
			want := fmt.Sprintf("%dms", 60000+id)
			if _, err := conn.Exec(ctx, "SET statement_timeout = '"+want+"'"); err != nil {
				note(false, err.Error())
				return
			}
			for range queries {
				mu.Lock()
				res.Queries++
				mu.Unlock()
				var got string
				if err := conn.QueryRow(ctx, "SHOW statement_timeout").Scan(&got); err != nil {
					note(false, err.Error())
				} else if got != want {
					note(true, fmt.Sprintf("SET %s, read %s", want, got))
				}
			}
		}()
	}
	wg.Wait()
	return res
}
