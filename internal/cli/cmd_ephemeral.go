package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

// Ephemeral databases (docs/ephemeral.md): `capydb db new` makes one with no
// login and prints its URL; `ephemeral destroy` and `ephemeral claim` use the
// state saved in .capydb/ephemeral.json (mode 0600: it holds the token).

func init() { registrars = append(registrars, addEphemeralCommands) }

func addEphemeralCommands(root *cobra.Command) {
	eph := &cobra.Command{Use: "ephemeral", Short: "Ephemeral databases: no account needed, destroyed after 72 hours unless claimed"}
	eph.AddCommand(dbNewCmd("create"), ephemeralDestroyCmd(), ephemeralClaimCmd())
	root.AddCommand(eph) // `db new` joins the db group (cmd_schema.go)
}

// ephemeralState is .capydb/ephemeral.json (CLI.md §4.3).
type ephemeralState struct {
	APIURL     string `json:"api_url"`
	ProjectID  string `json:"project_id"`
	Name       string `json:"name"`
	ClaimToken string `json:"claim_token"`
	ClaimURL   string `json:"claim_url"`
	ExpiresAt  string `json:"expires_at"`
}

type ephemeralDatabase struct {
	ProjectID string `json:"project_id"`
	Name      string `json:"name"`
	State     string `json:"state"`
	ExpiresAt string `json:"expires_at"`
}

func ephemeralPath(dir string) string { return filepath.Join(dir, linkDirName, "ephemeral.json") }

func dbNewCmd(use string) *cobra.Command {
	var name, region, version string
	var timeout time.Duration
	cmd := &cobra.Command{Use: use, Short: "Create an ephemeral database (no login) and print its URL", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			c, err := a.anonClient(a.apiURL(false))
			if err != nil {
				return err
			}
			c.APIKey, _ = a.savedKey() // a key, if any, makes the cap per organization
			body := map[string]any{}
			for k, v := range map[string]string{"name": name, "region": region, "postgres_version": version} {
				if v != "" {
					body[k] = v
				}
			}
			var created struct {
				ClaimToken        string            `json:"claim_token"`
				ClaimURL          string            `json:"claim_url"`
				EphemeralDatabase ephemeralDatabase `json:"ephemeral_database"`
			}
			if _, err := c.Do(a.ctx, apiclient.Request{Method: http.MethodPost, Path: "/v1/ephemeral-databases", Body: body}, &created); err != nil {
				return op("create an ephemeral database", err)
			}
			st := ephemeralState{APIURL: c.BaseURL, ProjectID: created.EphemeralDatabase.ProjectID, Name: created.EphemeralDatabase.Name,
				ClaimToken: created.ClaimToken, ClaimURL: created.ClaimURL, ExpiresAt: created.EphemeralDatabase.ExpiresAt}
			// Saved first, so that a timeout below does not lose the token.
			if err := writeEphemeral(a.cwd, &st); err != nil {
				return err
			}
			details, err := waitEphemeral(a, c, st, timeout)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string]any{"ephemeral_database": details.EphemeralDatabase,
					"connections": details.Connections, "claim_url": st.ClaimURL})
			}
			fmt.Fprintln(a.out, details.Connections.DirectURL)
			// The claim link embeds the token: it stays in ephemeral.json, not on the terminal.
			a.note("Ephemeral database %s: destroyed at %s unless claimed (capydb ephemeral claim; the claim link is in %s).",
				st.ProjectID, st.ExpiresAt, ephemeralPath(a.cwd))
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "name of the database")
	f.StringVar(&region, "region", "", "region (default: chosen by the server)")
	f.StringVar(&version, "postgres-version", "", "Postgres major version (default: the server's)")
	f.DurationVar(&timeout, "wait-timeout", 5*time.Minute, "how long to wait until it is ready")
	return cmd
}

type ephemeralDetails struct {
	EphemeralDatabase ephemeralDatabase         `json:"ephemeral_database"`
	Connections       *apiclient.ConnectionInfo `json:"connections"`
}

// waitEphemeral polls GET /v1/ephemeral-databases/{id} until ready or failed.
func waitEphemeral(a *app, c *apiclient.Client, st ephemeralState, timeout time.Duration) (*ephemeralDetails, error) {
	deadline := time.Now().Add(timeout)
	delay := 200 * time.Millisecond
	for {
		var d ephemeralDetails
		_, err := c.Do(a.ctx, apiclient.Request{Method: http.MethodGet, Path: "/v1/ephemeral-databases/" + st.ProjectID,
			Header: map[string]string{"X-CapyDB-Claim-Token": st.ClaimToken}, NoAuth: true}, &d)
		if err != nil {
			return nil, op("read the ephemeral database", err)
		}
		switch d.EphemeralDatabase.State {
		case "ready":
			if d.Connections != nil {
				return &d, nil
			}
		case "failed":
			return nil, fmt.Errorf("ephemeral database %s failed to provision", st.ProjectID)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("ephemeral database %s is not ready after %s (state %s); its claim token is in %s",
				st.ProjectID, timeout, d.EphemeralDatabase.State, ephemeralPath(a.cwd))
		}
		time.Sleep(delay)
		delay = min(2*delay, 2*time.Second)
	}
}

func writeEphemeral(dir string, st *ephemeralState) error {
	if err := os.MkdirAll(filepath.Join(dir, linkDirName), 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(ephemeralPath(dir), append(b, '\n'), 0o600); err != nil {
		return err
	}
	return ensureGitignore(dir, linkDirName+"/")
}

func readEphemeral(dir string) (*ephemeralState, error) {
	b, err := os.ReadFile(ephemeralPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, withCode(exitNotFound, "no ephemeral database in this directory (%s); create one with capydb db new", ephemeralPath(dir))
	}
	if err != nil {
		return nil, err
	}
	var st ephemeralState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", ephemeralPath(dir), err)
	}
	return &st, nil
}

func ephemeralDestroyCmd() *cobra.Command {
	return &cobra.Command{Use: "destroy", Short: "Destroy this directory's ephemeral database now", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			st, err := readEphemeral(a.cwd)
			if err != nil {
				return err
			}
			c, err := a.anonClient(st.APIURL)
			if err != nil {
				return err
			}
			_, err = c.Do(a.ctx, apiclient.Request{Method: http.MethodDelete, Path: "/v1/ephemeral-databases/" + st.ProjectID,
				Header: map[string]string{"X-CapyDB-Claim-Token": st.ClaimToken}, NoAuth: true}, nil)
			var ae *apiclient.Error
			if errors.As(err, &ae) && ae.Status == http.StatusMethodNotAllowed {
				return withCode(exitConflict, "destroying ephemeral databases is not supported by this server")
			}
			if err != nil {
				return op("destroy the ephemeral database", err)
			}
			_ = os.Remove(ephemeralPath(a.cwd))
			if a.json {
				return printJSON(a.out, map[string]any{"destroyed": st.ProjectID})
			}
			fmt.Fprintf(a.out, "Destroyed ephemeral database %s.\n", st.ProjectID)
			return nil
		}}
}

func ephemeralClaimCmd() *cobra.Command {
	return &cobra.Command{Use: "claim", Short: "Claim this directory's ephemeral database into your organization", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			st, err := readEphemeral(a.cwd)
			if err != nil {
				return err
			}
			c, err := a.client(false, true)
			if err != nil {
				return err
			}
			var out struct {
				Project *apiclient.Project `json:"project"`
			}
			if _, err := c.Do(a.ctx, apiclient.Request{Method: http.MethodPost, Path: "/v1/ephemeral-databases/" + st.ProjectID + "/claim",
				Body: map[string]string{"claim_token": st.ClaimToken}}, &out); err != nil {
				return op("claim the ephemeral database", err)
			}
			_ = os.Remove(ephemeralPath(a.cwd))
			if a.json {
				return printJSON(a.out, map[string]any{"project": out.Project})
			}
			fmt.Fprintf(a.out, "Claimed: %s is now project %s of your organization (same URLs, no expiry).\n", st.ProjectID, out.Project.Slug)
			return nil
		}}
}
