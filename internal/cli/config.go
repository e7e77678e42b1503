package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// orgEntry is one organization's saved credentials (CLI.md §4.1).
type orgEntry struct {
	APIKey string `json:"api_key,omitempty"`
	APIURL string `json:"api_url,omitempty"`
	AppURL string `json:"app_url,omitempty"`
	Name   string `json:"name,omitempty"`
	Slug   string `json:"slug,omitempty"`
}

// userConfig is <user config dir>/capydb/config.json, shared with the MCP server.
type userConfig struct {
	ActiveOrg     string               `json:"active_org,omitempty"`
	Organizations map[string]*orgEntry `json:"organizations"`
}

// defaultOrgKey holds credentials whose organization id is not known.
const defaultOrgKey = "default"

// configPath is $XDG_CONFIG_HOME or ~/.config on Linux, ~/Library/Application
// Support on macOS, %AppData% on Windows, then capydb/config.json.
func configPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("while locating the user config directory: %w", err)
	}
	return filepath.Join(dir, "capydb", "config.json"), nil
}

// loadConfig reads the config; a missing file is an empty config. Old
// single-credential files are read into the new shape (and written in it on
// the next save).
func loadConfig(path string) (*userConfig, error) {
	cfg := &userConfig{Organizations: map[string]*orgEntry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading %s: %w", path, err)
	}
	var probe struct {
		ActiveOrg        string               `json:"active_org"`
		Organizations    map[string]*orgEntry `json:"organizations"`
		APIKey           string               `json:"api_key"`
		APIURL           string               `json:"api_url"`
		AppURL           string               `json:"app_url"`
		OrganizationID   string               `json:"organization_id"`
		OrganizationName string               `json:"organization_name"`
		OrganizationSlug string               `json:"organization_slug"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON (fix or delete it): %v", path, err)
	}
	if probe.Organizations != nil {
		cfg.ActiveOrg = probe.ActiveOrg
		for id, e := range probe.Organizations {
			if e != nil {
				cfg.Organizations[id] = e
			}
		}
		return cfg, nil
	}
	if probe.APIKey != "" || probe.APIURL != "" {
		id := probe.OrganizationID
		if id == "" {
			id = defaultOrgKey
		}
		cfg.Organizations[id] = &orgEntry{APIKey: probe.APIKey, APIURL: probe.APIURL, AppURL: probe.AppURL,
			Name: probe.OrganizationName, Slug: probe.OrganizationSlug}
		cfg.ActiveOrg = id
	}
	return cfg, nil
}

// save writes the config with directory mode 0700 and file mode 0600,
// atomically (temp file + rename).
func (c *userConfig) save(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("while creating %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("while securing %s: %w", dir, err)
	}
	if c.Organizations == nil {
		c.Organizations = map[string]*orgEntry{}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return fmt.Errorf("while writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("while writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("while writing %s: %w", path, err)
	}
	return nil
}

// active returns the active organization's entry: active_org when it names
// an entry, otherwise the only entry when there is exactly one.
func (c *userConfig) active() (string, *orgEntry) {
	if e, ok := c.Organizations[c.ActiveOrg]; ok && e != nil {
		return c.ActiveOrg, e
	}
	if len(c.Organizations) == 1 {
		for id, e := range c.Organizations {
			return id, e
		}
	}
	return "", nil
}

// orgIDs lists the saved organizations in a stable order.
func (c *userConfig) orgIDs() []string {
	ids := make([]string, 0, len(c.Organizations))
	for id := range c.Organizations {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// maskKey shows a key as **** plus its last 4 characters.
func maskKey(k string) string {
	if k == "" {
		return ""
	}
	if len(k) <= 4 {
		return "****"
	}
	return "****" + k[len(k)-4:]
}
