package localcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MinPgBouncer is the first pgBouncer with protocol-level prepared
// statements (max_prepared_statements). Older ones let a client's
// prepared statement land on a server connection another client then
// uses: "prepared statement already exists" errors and (measured with
// psycopg 3) another statement's answer without an error.
var MinPgBouncer = [2]int{1, 21}

// ErrOldPgBouncer is wrapped by Start's error when the only pgBouncer found
// is older than MinPgBouncer and Config.AllowOldPgBouncer is false.
var ErrOldPgBouncer = errors.New("pgbouncer is too old")

// maxPreparedStatements is pgbouncer.ini's max_prepared_statements: how
// many prepared statements pgBouncer tracks per server connection.
const maxPreparedStatements = 200

// ToolsDir is where scripts/ensure-deps.sh builds pgBouncer when the host
// has none new enough: $CAPYDB_TOOLS_DIR, else /usr/local/lib/capydb/tools
// for root (the postgres user must be able to run it), else
// $XDG_DATA_HOME/capydb/tools (~/.local/share/capydb/tools).
func ToolsDir() string {
	if d := os.Getenv("CAPYDB_TOOLS_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/usr/local/lib/capydb/tools"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "capydb", "tools")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "capydb", "tools")
}

// bouncerCandidates lists the pgbouncers to try, in ensure-deps.sh's order.
func bouncerCandidates() []string {
	var out []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir != "" {
			out = append(out, filepath.Join(dir, "pgbouncer"))
		}
	}
	return append(out, "/usr/sbin/pgbouncer", filepath.Join(ToolsDir(), "bin", "pgbouncer"))
}

var bouncerVersionRE = regexp.MustCompile(`(?i)^pgbouncer (\d+)\.(\d+)`)

// bouncerVersion runs `bin --version` and returns major and minor.
func bouncerVersion(ctx context.Context, bin string) ([2]int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return [2]int{}, fmt.Errorf("while running %s --version: %w", bin, err)
	}
	m := bouncerVersionRE.FindSubmatch(out)
	if m == nil {
		return [2]int{}, fmt.Errorf("cannot parse %s --version output %q", bin, strings.TrimSpace(string(out)))
	}
	maj, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return [2]int{maj, minor}, nil
}

func versionAtLeast(v, min [2]int) bool {
	return v[0] > min[0] || (v[0] == min[0] && v[1] >= min[1])
}

func versionString(v [2]int) string { return fmt.Sprintf("%d.%d", v[0], v[1]) }

// findBouncer picks the pgBouncer to run: the configured path, else the
// first candidate at least MinPgBouncer, else (only with allowOld) the
// first older one. It returns the path and its version.
func findBouncer(ctx context.Context, configured string, allowOld bool) (string, [2]int, error) {
	cands := bouncerCandidates()
	if configured != "" {
		cands = []string{configured}
	}
	var old string
	var oldV [2]int
	seen := map[string]bool{}
	for _, p := range cands {
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			if configured != "" {
				return "", [2]int{}, fmt.Errorf("pgbouncer %s is not an executable file", configured)
			}
			continue
		}
		real, _ := filepath.EvalSymlinks(p)
		if seen[real] {
			continue
		}
		seen[real] = true
		v, err := bouncerVersion(ctx, p)
		if err != nil {
			if configured != "" {
				return "", [2]int{}, err
			}
			continue
		}
		if versionAtLeast(v, MinPgBouncer) {
			return p, v, nil
		}
		if old == "" {
			old, oldV = p, v
		}
	}
	if old == "" {
		return "", [2]int{}, errors.New("cannot find pgbouncer (run scripts/ensure-deps.sh, which builds pgbouncer " +
			versionString(MinPgBouncer) + "+ into " + ToolsDir() + ", or install pgbouncer " + versionString(MinPgBouncer) + " or newer)")
	}
	if !allowOld {
		return "", [2]int{}, fmt.Errorf("%w: %s is pgbouncer %s, and pgbouncer before %s breaks prepared statements on the pooled URL "+
			"(pgx, node-postgres, psycopg 3 and JDBC use them by default); run scripts/ensure-deps.sh, which builds a new one into %s, "+
			"install pgbouncer %s or newer, or pass --allow-old-pgbouncer to run it anyway",
			ErrOldPgBouncer, old, versionString(oldV), versionString(MinPgBouncer), ToolsDir(), versionString(MinPgBouncer))
	}
	return old, oldV, nil
}

// PgBouncerPath is the pgbouncer binary the cluster runs.
func (c *Cluster) PgBouncerPath() string { return c.bouncerBin }

// PgBouncerVersion is its major.minor, e.g. "1.24".
func (c *Cluster) PgBouncerVersion() string { return versionString(c.bouncerVersion) }
