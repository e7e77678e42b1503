package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// projectLink is .capydb/project.json (CLI.md §4.2); it holds no secrets.
type projectLink struct {
	ProjectID      string `json:"project_id"`
	ProjectName    string `json:"project_name"`
	ProjectSlug    string `json:"project_slug"`
	OrganizationID string `json:"organization_id"`
	APIURL         string `json:"api_url"`
	Region         string `json:"region"`
	AppPath        string `json:"app_path"`
	Framework      string `json:"framework"`
	DatabaseLayer  string `json:"database_layer"`
	Profile        string `json:"profile"`
	EnvFile        string `json:"env_file"`
	DatabaseURLVar string `json:"database_url_var"`
	DirectURLVar   string `json:"direct_url_var"`
	PooledURLVar   string `json:"pooled_url_var"`
	// ClusterID was written by old versions; read and ignored.
	ClusterID string `json:"cluster_id,omitempty"`
}

const linkDirName = ".capydb"

func linkPath(dir string) string { return filepath.Join(dir, linkDirName, "project.json") }

// findLink looks for .capydb/project.json in dir and its parents, up to the
// repository root. It returns nil when there is none.
func findLink(dir string) (*projectLink, string, error) {
	for d := dir; ; {
		b, err := os.ReadFile(linkPath(d))
		if err == nil {
			var l projectLink
			if err := json.Unmarshal(b, &l); err != nil {
				return nil, "", fmt.Errorf("%s is not valid JSON (run capydb link again): %v", linkPath(d), err)
			}
			if l.ProjectID == "" {
				return nil, "", fmt.Errorf("%s has no project_id (run capydb link again)", linkPath(d))
			}
			return &l, d, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, "", fmt.Errorf("while reading %s: %w", linkPath(d), err)
		}
		if isRepoRoot(d) {
			return nil, "", nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return nil, "", nil
		}
		d = parent
	}
}

// writeLink writes dir/.capydb/project.json (mode 0644).
func writeLink(dir string, l *projectLink) error {
	if err := os.MkdirAll(filepath.Join(dir, linkDirName), 0o755); err != nil {
		return fmt.Errorf("while creating %s: %w", linkDirName, err)
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(linkPath(dir), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("while writing %s: %w", linkPath(dir), err)
	}
	return nil
}

func isRepoRoot(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".git"))
	return err == nil
}

// repoRoot is the nearest directory at or above dir holding .git; dir itself
// when there is none.
func repoRoot(dir string) string {
	for d := dir; ; {
		if isRepoRoot(d) {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return dir
		}
		d = parent
	}
}

// ensureGitignore makes the repository's .gitignore (created if missing)
// list each path (absolute, or relative to dir); directories end with "/".
func ensureGitignore(dir string, paths ...string) error {
	root := repoRoot(dir)
	file := filepath.Join(root, ".gitignore")
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("while reading %s: %w", file, err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		have[line] = true
		have[strings.TrimPrefix(line, "/")] = true
	}
	var add []string
	for _, p := range paths {
		isDir := strings.HasSuffix(p, "/")
		abs := p
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(dir, p)
		}
		rel, err := filepath.Rel(root, abs)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		entry := filepath.ToSlash(rel)
		if isDir {
			entry += "/"
		}
		if have[entry] || have["/"+entry] || (isDir && have[strings.TrimSuffix(entry, "/")]) {
			continue
		}
		have[entry] = true
		add = append(add, entry)
	}
	if len(add) == 0 {
		return nil
	}
	text := string(b)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	text += strings.Join(add, "\n") + "\n"
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		return fmt.Errorf("while writing %s: %w", file, err)
	}
	return nil
}
