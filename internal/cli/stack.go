package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// stack is what a directory's app is built with (CLI.md §10.2).
type stack struct {
	AppPath   string // relative to the directory searched ("" = itself)
	Framework string // nextjs, sveltekit, remix, node, django, rails, go, python, generic
	Layer     string // prisma, drizzle, active_record, pg, pgx, sqlalchemy, generic
}

// Profile is <framework> or <framework>+<layer>.
func (s stack) Profile() string {
	if s.Layer == "" || s.Layer == "generic" {
		return s.Framework
	}
	return s.Framework + "+" + s.Layer
}

// pooledDefault reports whether DATABASE_URL is the pooled URL for this stack.
func (s stack) pooledDefault() bool {
	switch s.Layer {
	case "prisma", "drizzle", "pg":
		return true
	case "pgx", "sqlalchemy", "active_record":
		return false
	}
	switch s.Framework {
	case "nextjs", "sveltekit", "remix", "node":
		return true
	}
	return false
}

var skipDirs = map[string]bool{"node_modules": true, "vendor": true, "dist": true, "build": true, "coverage": true}

// detectStack finds the app in dir, or up to 3 levels below it. Several
// candidates below dir are a choice on a terminal, else an error.
func (a *app) detectStack(dir string) (stack, error) {
	if isApp(dir) {
		return detectAt(dir, ""), nil
	}
	var found []string
	var walk func(d string, depth int)
	walk = func(d string, depth int) {
		if depth > 3 {
			return
		}
		entries, err := os.ReadDir(d)
		if err != nil {
			return
		}
		for _, e := range entries {
			if !e.IsDir() || skipDirs[e.Name()] || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			sub := filepath.Join(d, e.Name())
			if isApp(sub) {
				found = append(found, sub)
				continue
			}
			walk(sub, depth+1)
		}
	}
	walk(dir, 1)
	sort.Strings(found)
	switch len(found) {
	case 0:
		return detectAt(dir, ""), nil
	case 1:
		rel, _ := filepath.Rel(dir, found[0])
		return detectAt(found[0], filepath.ToSlash(rel)), nil
	}
	rels := make([]string, len(found))
	for i, f := range found {
		r, _ := filepath.Rel(dir, f)
		rels[i] = filepath.ToSlash(r)
	}
	if !a.interactive {
		return stack{}, usageError(fmt.Sprintf("found several apps (%s); run the command inside one of them or pass --env-file", strings.Join(rels, ", ")))
	}
	i, err := a.choose("Which app should get the database variables?", rels)
	if err != nil {
		return stack{}, err
	}
	return detectAt(found[i], rels[i]), nil
}

// isApp reports whether dir looks like an application root.
func isApp(dir string) bool {
	if pkg, ok := readPackageJSON(dir); ok {
		return !(pkg.workspaceRoot && len(pkg.deps) == 0)
	}
	for _, f := range []string{"go.mod", "pyproject.toml", "requirements.txt", "manage.py", "Gemfile",
		"schema.prisma", filepath.Join("prisma", "schema.prisma")} {
		if exists(filepath.Join(dir, f)) {
			return true
		}
	}
	return false
}

type packageJSON struct {
	deps          map[string]bool
	workspaceRoot bool
}

func readPackageJSON(dir string) (packageJSON, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return packageJSON{}, false
	}
	var raw struct {
		Dependencies    map[string]any `json:"dependencies"`
		DevDependencies map[string]any `json:"devDependencies"`
		Workspaces      any            `json:"workspaces"`
	}
	_ = json.Unmarshal(b, &raw)
	p := packageJSON{deps: map[string]bool{}, workspaceRoot: raw.Workspaces != nil || exists(filepath.Join(dir, "pnpm-workspace.yaml"))}
	for k := range raw.Dependencies {
		p.deps[k] = true
	}
	for k := range raw.DevDependencies {
		p.deps[k] = true
	}
	if p.workspaceRoot {
		// A workspace root's tooling is not an app dependency.
		for _, app := range []string{"next", "@sveltejs/kit", "@remix-run/react", "@remix-run/dev", "drizzle-orm", "@prisma/client", "prisma", "pg"} {
			if p.deps[app] {
				return p, true
			}
		}
		p.deps = map[string]bool{}
	}
	return p, true
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func fileContains(path, needle string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(strings.ToLower(string(b)), strings.ToLower(needle))
}

// detectAt applies the detection table to one directory.
func detectAt(dir, rel string) stack {
	s := stack{AppPath: rel, Framework: detectFramework(dir)}
	pkg, hasPkg := readPackageJSON(dir)
	switch {
	case exists(filepath.Join(dir, "schema.prisma")) || exists(filepath.Join(dir, "prisma", "schema.prisma")):
		s.Layer = "prisma"
	case anyExists(dir, "drizzle.config.ts", "drizzle.config.js", "drizzle.config.mjs", "drizzle.config.cjs"):
		s.Layer = "drizzle"
	case s.Framework == "rails":
		s.Layer = "active_record"
	case hasPkg && pkg.deps["drizzle-orm"]:
		s.Layer = "drizzle"
	case hasPkg && (pkg.deps["@prisma/client"] || pkg.deps["prisma"]):
		s.Layer = "prisma"
	case hasPkg && pkg.deps["pg"]:
		s.Layer = "pg"
	case fileContains(filepath.Join(dir, "go.mod"), "github.com/jackc/pgx"):
		s.Layer = "pgx"
	case (s.Framework == "python" || s.Framework == "django") &&
		(fileContains(filepath.Join(dir, "pyproject.toml"), "sqlalchemy") || fileContains(filepath.Join(dir, "requirements.txt"), "sqlalchemy")):
		s.Layer = "sqlalchemy"
	default:
		s.Layer = "generic"
	}
	return s
}

func anyExists(dir string, names ...string) bool {
	for _, n := range names {
		if exists(filepath.Join(dir, n)) {
			return true
		}
	}
	return false
}

func detectFramework(dir string) string {
	if pkg, ok := readPackageJSON(dir); ok && !(pkg.workspaceRoot && len(pkg.deps) == 0) {
		switch {
		case pkg.deps["next"]:
			return "nextjs"
		case pkg.deps["@sveltejs/kit"]:
			return "sveltekit"
		case pkg.deps["@remix-run/react"] || pkg.deps["@remix-run/dev"]:
			return "remix"
		}
		return "node"
	}
	switch {
	case exists(filepath.Join(dir, "manage.py")) || fileContains(filepath.Join(dir, "requirements.txt"), "django") ||
		fileContains(filepath.Join(dir, "pyproject.toml"), "django"):
		return "django"
	case fileContains(filepath.Join(dir, "Gemfile"), "rails"):
		return "rails"
	case exists(filepath.Join(dir, "go.mod")):
		return "go"
	case exists(filepath.Join(dir, "pyproject.toml")) || exists(filepath.Join(dir, "requirements.txt")):
		return "python"
	}
	return "generic"
}

// defaultEnvFile is the stack's env file: .env.local for Next.js and
// SvelteKit (.env if only that exists), otherwise .env (.env.local if only
// that exists).
func defaultEnvFile(appDir string, s stack) string {
	hasEnv, hasLocal := exists(filepath.Join(appDir, ".env")), exists(filepath.Join(appDir, ".env.local"))
	if s.Framework == "nextjs" || s.Framework == "sveltekit" {
		if hasEnv && !hasLocal {
			return ".env"
		}
		return ".env.local"
	}
	if hasLocal && !hasEnv {
		return ".env.local"
	}
	return ".env"
}
