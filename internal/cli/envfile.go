package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/capydb/capydb/internal/apiclient"
)

type envVar struct{ Key, Value string }

// envVarsFor is what link, create and env pull write for a stack
// (CLI.md §10.1): DATABASE_URL pooled or direct by stack, the explicit
// direct/pooled names, DIRECT_URL (= direct), DATABASE_URL_UNPOOLED (self-hosted
// addition), DATABASE_SESSION_URL (the session-mode pooled URL, self-hosted
// addition, when the server sends one), DATABASE_READ_URL (the first read
// replica URL, when attached) and, with the app role, its two URLs.
func envVarsFor(s stack, c *apiclient.ConnectionInfo) []envVar {
	main := c.DirectURL
	if s.pooledDefault() {
		main = c.PooledURL
	}
	vars := []envVar{
		{"DATABASE_URL", main},
		{"DATABASE_DIRECT_URL", c.DirectURL},
		{"DATABASE_POOL_URL", c.PooledURL},
		{"DIRECT_URL", c.DirectURL},
		{"DATABASE_URL_UNPOOLED", c.DirectURL},
	}
	if c.SessionURL != "" {
		vars = append(vars, envVar{"DATABASE_SESSION_URL", c.SessionURL})
	}
	// A project attached to a read replica (docs/fleet.md) reads from its first.
	if len(c.ReadReplicaURLs) > 0 {
		vars = append(vars, envVar{"DATABASE_READ_URL", c.ReadReplicaURLs[0]})
	}
	if c.App != nil {
		app := c.App.DirectURL
		if s.pooledDefault() {
			app = c.App.PooledURL
		}
		vars = append(vars, envVar{"DATABASE_APP_URL", app}, envVar{"DATABASE_APP_POOL_URL", c.App.PooledURL})
	}
	return vars
}

// linkVarNames are the variable names the link records for the stack.
func linkVarNames(s stack) (db, direct, pooled string) {
	if s.Layer == "prisma" {
		return "DATABASE_URL", "DIRECT_URL", "DATABASE_POOL_URL"
	}
	return "DATABASE_URL", "DATABASE_DIRECT_URL", "DATABASE_POOL_URL"
}

func envNames(vars []envVar) []string {
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = v.Key
	}
	return out
}

var envLine = regexp.MustCompile(`^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)(.*)$`)

// parseEnvValue undoes the quoting of a dotenv value.
func parseEnvValue(v string) string {
	v = strings.TrimSpace(v)
	switch {
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		return strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\n`, "\n").Replace(v[1 : len(v)-1])
	case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
		return v[1 : len(v)-1]
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v
}

func quoteEnvValue(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}

// readEnvFile returns the variables of a dotenv file (missing file = none).
func readEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := envLine.FindStringSubmatch(line); m != nil {
			out[m[2]] = parseEnvValue(m[4])
		}
	}
	return out, nil
}

// envWriteMode says how existing, different values are treated.
type envWriteMode int

const (
	// envAsk (link, create): ask on a terminal, otherwise overwrite with a warning.
	envAsk envWriteMode = iota
	// envRefresh (env pull): values that point at the same server are
	// refreshed silently; others are treated like envAsk.
	envRefresh
	// envAddOnly (doctor --fix): only add missing keys.
	envAddOnly
)

// writeEnvFile sets vars in a dotenv file, leaving every other line as it
// was. Values are double-quoted. Keys that already hold a different value
// are decided together, with at most one question: the file then points at
// one database, never half at the old one and half at the new. A person who
// declines gets *envDeclined and the file is left untouched. envAddOnly
// returns the keys it left alone.
func (a *app) writeEnvFile(path string, vars []envVar, mode envWriteMode, overwrite bool) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("while reading %s: %w", path, err)
	}
	perm := os.FileMode(0o600) // it holds passwords
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	want := map[string]string{}
	for _, v := range vars {
		want[v.Key] = v.Value
	}
	var news []string
	for _, v := range vars {
		news = append(news, v.Value)
	}
	done := map[string]bool{}
	text := strings.TrimSuffix(string(b), "\n")
	lines := strings.Split(text, "\n")
	if text == "" {
		lines = nil
	}
	// Which of our keys hold another value, and which of those point
	// somewhere else than a refresh of our own URLs would.
	changed := map[int]string{} // line -> key
	var changedKeys, foreign []string
	for i, line := range lines {
		m := envLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := m[2]
		val, ours := want[key]
		if !ours || done[key] {
			continue
		}
		done[key] = true
		old := parseEnvValue(m[4])
		if old == val {
			continue
		}
		changed[i] = key
		changedKeys = append(changedKeys, key)
		if !(mode == envRefresh && sameServer(old, news)) {
			foreign = append(foreign, key)
		}
	}
	name := filepath.Base(path)
	replace := true
	switch {
	case len(changed) == 0:
	case mode == envAddOnly:
		replace = false
	case len(foreign) == 0:
		// a refresh of our own values (for example after a rotation)
	case overwrite:
		a.note("warning: overwriting %s in %s", strings.Join(foreign, ", "), name)
	case a.interactive:
		ok, err := a.confirm(fmt.Sprintf("%s holds other values for %s. Overwrite them?", name, strings.Join(foreign, ", ")))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &envDeclined{file: name, keys: foreign}
		}
	default:
		a.note("warning: overwriting %s in %s (they held different values)", strings.Join(foreign, ", "), name)
	}
	if !replace {
		return changedKeys, a.finishEnvFile(path, lines, vars, done, perm)
	}
	for i, key := range changed {
		m := envLine.FindStringSubmatch(lines[i])
		lines[i] = m[1] + key + "=" + quoteEnvValue(want[key])
	}
	return nil, a.finishEnvFile(path, lines, vars, done, perm)
}

// envDeclined: a person kept the env file's other values; nothing was written.
type envDeclined struct {
	file string
	keys []string
}

func (e *envDeclined) Error() string {
	return fmt.Sprintf("kept %s unchanged (its %s point at another database)", e.file, strings.Join(e.keys, ", "))
}

// finishEnvFile appends the keys the file did not have and writes it.
func (a *app) finishEnvFile(path string, lines []string, vars []envVar, done map[string]bool, perm os.FileMode) error {
	for _, v := range vars {
		if !done[v.Key] {
			lines = append(lines, v.Key+"="+quoteEnvValue(v.Value))
		}
	}
	out := strings.Join(lines, "\n")
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(out), perm); err != nil {
		return fmt.Errorf("while writing %s: %w", path, err)
	}
	a.warnShadowing(path, vars)
	return nil
}

// sameServer reports whether a URL points at the host and port of one of
// the new URLs (then replacing it is a refresh, not a change of database).
func sameServer(old string, news []string) bool {
	ou, err := url.Parse(old)
	if err != nil || ou.Host == "" {
		return false
	}
	for _, n := range news {
		if nu, err := url.Parse(n); err == nil && nu.Host == ou.Host {
			return true
		}
	}
	return false
}

// warnShadowing warns when another env file next to path sets one of our
// keys to a different database.
func (a *app) warnShadowing(path string, vars []envVar) {
	dir := filepath.Dir(path)
	matches, _ := filepath.Glob(filepath.Join(dir, ".env*"))
	sort.Strings(matches)
	for _, other := range matches {
		if other == path || strings.HasSuffix(other, ".example") || strings.HasSuffix(other, ".sample") {
			continue
		}
		vals, err := readEnvFile(other)
		if err != nil {
			continue
		}
		for _, v := range vars {
			if o, ok := vals[v.Key]; ok && o != v.Value && !sameDatabase(o, v.Value) {
				a.note("warning: %s in %s points at a different database than %s", v.Key, filepath.Base(other), filepath.Base(path))
			}
		}
	}
}

func sameDatabase(a, b string) bool {
	au, err1 := url.Parse(a)
	bu, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && au.Host == bu.Host && au.Path == bu.Path
}
