package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addMiscCommands) }

func addMiscCommands(root *cobra.Command) {
	root.AddCommand(versionCmd(), doctorCmd(), statusCmd(), completionCmd())
}

// completionCmd replaces cobra's default so that an unknown shell is a usage error.
func completionCmd() *cobra.Command {
	return &cobra.Command{Use: "completion bash|zsh|fish|powershell", Short: "Print a shell completion script",
		Args: exactArgs(1), ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root, out := cmd.Root(), cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(out)
			}
			return usageError(fmt.Sprintf("unknown shell %q: use bash, zsh, fish or powershell", args[0]))
		}}
}

func versionCmd() *cobra.Command {
	var check bool
	cmd := &cobra.Command{Use: "version", Short: "Print the version (--check: also the server's)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			out := map[string]any{"version": Version}
			if check {
				c, err := a.anonClient(a.apiURL(false))
				if err != nil {
					return err
				}
				c.HTTP.Timeout = 5 * time.Second
				c.Delays = []time.Duration{0}
				_, h, err := c.Status(a.ctx)
				if err != nil {
					return op("read the server version", err)
				}
				out["server_version"] = h.Get("X-CapyDB-Version")
			}
			if a.json {
				return printJSON(a.out, out)
			}
			fmt.Fprintf(a.out, "capydb %s\n", Version)
			if check {
				sv, _ := out["server_version"].(string)
				fmt.Fprintf(a.out, "server %s\n", dash(sv))
				if sv != "" && sv != Version {
					a.note("note: the CLI and the server run different versions")
				}
			}
			return nil
		}}
	cmd.Flags().BoolVar(&check, "check", false, "also report the server's version (X-CapyDB-Version)")
	return cmd
}

// check is one doctor check.
type check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // pass, fail, skip
	Detail string `json:"detail"`
}

func doctorCmd() *cobra.Command {
	var fix, yes bool
	cmd := &cobra.Command{Use: "doctor", Short: "Check the configuration, the server, the key, the link and psql", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if yes && !fix {
				return usageError("--yes only works with --fix")
			}
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			checks, fixes := a.doctor(fix)
			ok := true
			for _, c := range checks {
				if c.Status == "fail" {
					ok = false
				}
			}
			if a.json {
				out := map[string]any{"checks": checks, "ok": ok}
				if fix {
					out["fixes"] = fixes
				}
				if err := printJSON(a.out, out); err != nil {
					return err
				}
			} else {
				for _, f := range fixes {
					fmt.Fprintf(a.out, "fixed: %s\n", f)
				}
				for _, c := range checks {
					fmt.Fprintf(a.out, "[%s] %-18s %s\n", c.Status, c.Name, c.Detail)
				}
			}
			if !ok {
				return withCode(exitError, "some checks failed")
			}
			return nil
		}}
	cmd.Flags().BoolVar(&fix, "fix", false, "add missing env variables first (never overwrites)")
	cmd.Flags().BoolVar(&yes, "yes", false, "with --fix: do not ask")
	return cmd
}

func (a *app) doctor(fix bool) ([]check, []string) {
	fixes := []string{}
	var checks []check
	add := func(name, status, format string, args ...any) {
		checks = append(checks, check{Name: name, Status: status, Detail: fmt.Sprintf(format, args...)})
	}
	// config: the file (if any) was parsed by newApp.
	if _, err := os.Stat(a.cfgPath); err == nil {
		add("config", "pass", "%s", a.cfgPath)
	} else {
		add("config", "pass", "no config file (%s); using flags and environment", a.cfgPath)
	}
	base := a.apiURL(true)
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	c, err := a.anonClient(base)
	if err != nil {
		add("api", "fail", "%v", err)
		return checks, fixes
	}
	c.Delays = []time.Duration{0} // a check, not a retry loop
	if st, _, err := c.Status(ctx); err != nil {
		add("api", "fail", "GET %s/status: %v", base, err)
	} else {
		add("api", "pass", "%s is %s", base, st.Status)
	}
	key, _ := a.savedKey()
	var linked *apiclient.Project
	if key == "" {
		add("auth", "fail", "no API key; run capydb login")
	} else {
		c.APIKey = key
		if me, err := c.Me(ctx); err != nil {
			add("auth", "fail", "GET /v1/me: %s", errorMessage(err))
		} else if me.Organization != nil {
			add("auth", "pass", "%s as %s (%s)", me.Principal.AuthSource, me.Organization.Name, me.Organization.ID)
		} else {
			add("auth", "pass", "%s", me.Principal.AuthSource)
		}
	}
	if a.link == nil {
		add("project_link", "skip", "this directory is not linked (capydb link)")
	} else if key == "" {
		add("project_link", "skip", "%s: no API key to check it", a.link.ProjectID)
	} else if p, err := c.GetProject(ctx, a.link.ProjectID); err != nil {
		add("project_link", "fail", "%s: %v", a.link.ProjectID, err)
	} else {
		linked = p
		add("project_link", "pass", "%s (%s), %s", p.Name, p.ID, p.State)
	}
	a.doctorEnv(ctx, c, linked, fix, &fixes, add)
	if path, err := exec.LookPath("psql"); err != nil {
		add("psql", "fail", "psql is not on PATH (install the PostgreSQL client)")
	} else {
		add("psql", "pass", "%s", path)
	}
	add("db_config", "skip", "needs the SQL API, which this server does not offer yet")
	add("migration_history", "skip", "needs the SQL API, which this server does not offer yet")
	return checks, fixes
}

// doctorEnv checks the linked env file and whether the shell shadows it.
func (a *app) doctorEnv(ctx context.Context, c *apiclient.Client, p *apiclient.Project, fix bool, fixes *[]string,
	add func(name, status, format string, args ...any)) {
	if a.link == nil || p == nil {
		add("env_vars", "skip", "no linked project")
		add("env_project", "skip", "no linked project")
		add("env_shadowing", "skip", "no linked project")
		return
	}
	envPath := filepath.Join(a.linkDir, filepath.FromSlash(a.link.AppPath), filepath.FromSlash(a.link.EnvFile))
	vals, err := readEnvFile(envPath)
	if err != nil {
		add("env_vars", "fail", "%s: %v", envPath, err)
		return
	}
	st := stack{AppPath: a.link.AppPath, Framework: a.link.Framework, Layer: a.link.DatabaseLayer}
	var missing []string
	var want []envVar
	conn, connErr := c.Connections(ctx, p.ID)
	if connErr == nil {
		want = envVarsFor(st, conn)
		// What env pull wrote when the server handed out its CA.
		if ca := filepath.Join(a.linkDir, linkDirName, caFileName); exists(ca) {
			want = verifyingVars(want, st, ca, usesPostgresJS(filepath.Dir(envPath)))
		}
	} else {
		for _, k := range []string{"DATABASE_URL", "DATABASE_DIRECT_URL", "DATABASE_POOL_URL", "DIRECT_URL", "DATABASE_URL_UNPOOLED"} {
			want = append(want, envVar{Key: k})
		}
	}
	for _, v := range want {
		if vals[v.Key] == "" {
			missing = append(missing, v.Key)
		}
	}
	if len(missing) > 0 && fix && want[0].Value != "" {
		if _, err := a.writeEnvFile(envPath, want, envAddOnly, false); err == nil {
			*fixes = append(*fixes, "added "+strings.Join(missing, ", ")+" to "+a.link.EnvFile)
			missing = nil
		}
	}
	if len(missing) > 0 {
		add("env_vars", "fail", "%s lacks %s (capydb env pull writes them)", a.link.EnvFile, strings.Join(missing, ", "))
	} else {
		add("env_vars", "pass", "%s has the connection variables", a.link.EnvFile)
	}
	vals, _ = readEnvFile(envPath)
	if connErr != nil {
		add("env_project", "skip", "cannot read the project's connection URLs: %s", errorMessage(connErr))
	} else if wrong := foreignURLs(vals, want); len(wrong) > 0 {
		add("env_project", "fail", "%s points %s, not at project %s (%s); run capydb env pull",
			a.link.EnvFile, strings.Join(wrong, "; "), p.Name, urlTarget(want[0].Value))
	} else {
		add("env_project", "pass", "%s points at project %s (%s)", a.link.EnvFile, p.Name, urlTarget(want[0].Value))
	}
	shadow := []string{}
	for _, v := range want {
		if sh := os.Getenv(v.Key); sh != "" && vals[v.Key] != "" && sh != vals[v.Key] {
			shadow = append(shadow, v.Key)
		}
	}
	if len(shadow) > 0 {
		add("env_shadowing", "fail", "your shell exports %s with other values than %s", strings.Join(shadow, ", "), a.link.EnvFile)
	} else {
		add("env_shadowing", "pass", "no shell variable overrides %s", a.link.EnvFile)
	}
}

// foreignURLs lists, as "KEY at <target>", the env values that name another
// database than the project's URL for the same key: another host, port,
// database or user. Passwords and query options (sslmode, sslrootcert) may
// differ: they do not change which database it is.
func foreignURLs(vals map[string]string, want []envVar) []string {
	var out []string
	for _, v := range want {
		have, ok := vals[v.Key]
		if !ok || have == "" || v.Value == "" {
			continue
		}
		if urlTarget(have) != urlTarget(v.Value) {
			out = append(out, v.Key+" at "+urlTarget(have))
		}
	}
	return out
}

// urlTarget is which database a URL names: user@host:port/database, with
// no password ("" parts kept visible so two broken URLs still differ).
func urlTarget(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "a value that is not a database URL"
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	return fmt.Sprintf("%s@%s:%s/%s", u.User.Username(), u.Hostname(), port, strings.TrimPrefix(u.Path, "/"))
}

func statusCmd() *cobra.Command {
	var remote bool
	cmd := &cobra.Command{Use: "status", Short: "Show the local state (login, link); --remote also asks the server", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			api := a.apiURL(true)
			key, _ := a.savedKey()
			_, entry := a.cfg.active()
			out := map[string]any{"logged_in": key != "", "api_url": api, "app_url": a.appURL(api), "organization": nil, "linked_project": nil}
			if entry != nil {
				id, _ := a.cfg.active()
				out["organization"] = map[string]any{"id": id, "name": entry.Name, "slug": entry.Slug}
			}
			if a.link != nil {
				out["linked_project"] = a.link
			}
			var remoteErr error
			if remote {
				c, err := a.anonClient(api)
				if err != nil {
					return err
				}
				if st, _, err := c.Status(a.ctx); err == nil {
					out["api"] = st
				} else {
					remoteErr = op("read the server status", err)
				}
				if key != "" && remoteErr == nil && (a.project != "" || a.link != nil) {
					c.APIKey = key
					p, err := a.resolveProject(c, a.project, true)
					if err == nil {
						rp := map[string]any{"project": p}
						if p.LatestJobID != nil {
							if j, err := c.GetJob(a.ctx, *p.LatestJobID); err == nil {
								rp["latest_job"] = j
							}
						}
						out["remote_project"] = rp
					} else {
						remoteErr = err
					}
				}
			}
			if a.json {
				if err := printJSON(a.out, out); err != nil {
					return err
				}
				return remoteErr
			}
			kv := [][2]string{{"api_url", api}, {"logged_in", yesNo(key != "")}}
			if entry != nil {
				kv = append(kv, [2]string{"organization", entry.Name + " (" + entry.Slug + ")"})
			}
			if a.link != nil {
				kv = append(kv, [2]string{"linked_project", a.link.ProjectName + " (" + a.link.ProjectID + ")"},
					[2]string{"env_file", a.link.EnvFile})
			} else {
				kv = append(kv, [2]string{"linked_project", "not linked"})
			}
			if st, ok := out["api"].(*apiclient.Status); ok {
				kv = append(kv, [2]string{"server", st.Status})
			}
			if rp, ok := out["remote_project"].(map[string]any); ok {
				p := rp["project"].(*apiclient.Project)
				kv = append(kv, [2]string{"project_state", p.State})
				if j, ok := rp["latest_job"].(*apiclient.Job); ok {
					kv = append(kv, [2]string{"latest_job", fmt.Sprintf("%s %s (%s)", j.Type, j.State, j.ID)})
				}
			}
			fields(a.out, kv)
			return remoteErr
		}}
	cmd.Flags().BoolVar(&remote, "remote", false, "also ask the server: its status, the project and its latest job")
	return cmd
}
