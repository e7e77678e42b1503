package cli

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/capydb/capydb/internal/bgsvc"
	"github.com/capydb/capydb/internal/wire"
)

func init() { registrars = append(registrars, addAuthCommands) }

func addAuthCommands(root *cobra.Command) {
	root.AddCommand(loginCmd(), logoutCmd(), whoamiCmd())
	authGroup := group("auth", "Log in and out (aliases of login, logout, whoami)")
	authGroup.AddCommand(loginCmd(), logoutCmd(), whoamiCmd())
	root.AddCommand(authGroup)

	cfg := group("config", "Show the resolved client configuration")
	cfg.AddCommand(configShowCmd())
	root.AddCommand(cfg)

	orgs := group("orgs", "Organizations saved in the config", "org", "organizations")
	orgs.AddCommand(orgsListCmd(), orgsSwitchCmd())
	root.AddCommand(orgs)
}

type loginOptions struct {
	noOpen                      bool
	name, deviceName, expiresIn string
}

func loginCmd() *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{Use: "login", Short: "Log in: approve this device in the browser, or save --api-key", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			if o.expiresIn != "" {
				if _, err := parseExpiresIn(o.expiresIn, time.Now()); err != nil {
					return err
				}
			}
			c, err := a.anonClient(a.apiURL(false))
			if err != nil {
				return err
			}
			if key, src := a.savedKey(); key != "" && (src == "flag" || src == "env") {
				// A key given directly is validated and saved; no browser.
				c.APIKey = key
				me, err := c.Me(a.ctx)
				if err != nil {
					return op("check the API key", err)
				}
				id, entry := a.saveLogin(c.BaseURL, key, me.Organization)
				if err := a.cfg.save(a.cfgPath); err != nil {
					return err
				}
				return a.printLogin(id, entry)
			}
			if _, err := a.deviceLogin(c, o); err != nil {
				return err
			}
			id, entry := a.cfg.active()
			return a.printLogin(id, entry)
		}}
	f := cmd.Flags()
	f.BoolVar(&o.noOpen, "no-open", false, "do not open a browser")
	f.StringVar(&o.name, "name", "", "name of the key to create (default: CLI on <device>)")
	f.StringVar(&o.deviceName, "device-name", "", "device label (default: the host name)")
	f.StringVar(&o.expiresIn, "expires-in", "", "key lifetime: 24h, 7d, 2w, 30d or an RFC 3339 time (default: the server's, 90 days)")
	return cmd
}

func (a *app) printLogin(id string, e *orgEntry) error {
	if e == nil {
		return fmt.Errorf("no credentials were saved")
	}
	if a.json {
		return printJSON(a.out, map[string]any{"organization_id": id, "organization_name": e.Name,
			"organization_slug": e.Slug, "api_url": e.APIURL, "app_url": e.AppURL, "config_path": a.cfgPath})
	}
	fmt.Fprintf(a.out, "Logged in to %s (%s) at %s.\nSaved credentials to %s\n", dash(e.Name), dash(e.Slug), e.APIURL, a.cfgPath)
	return nil
}

// saveLogin records a key under its organization and makes it active (the
// caller saves the file).
func (a *app) saveLogin(apiURL, key string, org *apiclient.Organization) (string, *orgEntry) {
	id := defaultOrgKey
	e := &orgEntry{APIKey: key, APIURL: apiURL, AppURL: a.appURL(apiURL)}
	if org != nil {
		id, e.Name, e.Slug = org.ID, org.Name, org.Slug
	}
	a.cfg.Organizations[id] = e
	a.cfg.ActiveOrg = id
	return id, e
}

// deviceLogin runs the device flow (CLI.md §11) and saves the key it gets.
func (a *app) deviceLogin(c *apiclient.Client, o loginOptions) (string, error) {
	device := o.deviceName
	if device == "" {
		device, _ = os.Hostname()
	}
	if device == "" {
		device = "local-" + runtime.GOOS
	}
	source := "cli"
	if os.Getenv("CAPYDB_AGENT") == "1" || !a.stdinTTY {
		source = "agent"
	}
	name := o.name
	if name == "" {
		name = "CLI on " + device
		if source == "agent" {
			name = "Agent on " + device
		}
	}
	req := apiclient.LoginStartRequest{DeviceName: device, Name: name, Source: source}
	if o.expiresIn != "" {
		t, err := parseExpiresIn(o.expiresIn, time.Now())
		if err != nil {
			return "", err
		}
		req.ExpiresAt = &t
	}
	key, err := a.pollDeviceLogin(c, req, o.noOpen)
	if err != nil && serverOf(err) == "" {
		err = &atServer{server: c.BaseURL, err: err}
	}
	return key, err
}

// pollDeviceLogin starts the session, shows the approval URL and polls
// until the key arrives (CLI.md §11 steps 2-6).
func (a *app) pollDeviceLogin(c *apiclient.Client, req apiclient.LoginStartRequest, noOpen bool) (string, error) {
	sess, err := c.StartLogin(a.ctx, req)
	if err != nil {
		return "", op("start device login", err)
	}
	approve := a.appURL(c.BaseURL) + "/dashboard/cli/login?session=" + url.QueryEscape(sess.SessionID)
	w := a.out
	if a.json {
		w = a.err
	}
	fmt.Fprintf(w, "Open this URL to approve:\n%s\n", approve)
	if !noOpen && !isCI() && hasDisplay() {
		if err := openBrowser(approve); err == nil {
			a.note("(opened in your browser)")
		}
	}
	a.note("Waiting for approval...")
	failures := 0
	for {
		s, err := c.PollLogin(a.ctx, sess.SessionID, sess.PollToken)
		switch st := apiclient.StatusOf(err); {
		case err == nil:
			failures = 0
			if s.State == "completed" {
				if s.PlaintextAPIKey == "" {
					return "", withCode(exitAuth, "this login session was already used; run capydb login again")
				}
				var org *apiclient.Organization
				if s.OrganizationID != "" {
					org = &apiclient.Organization{Organization: wire.Organization{ID: s.OrganizationID, Name: s.OrganizationName, Slug: s.OrganizationSlug}}
				}
				a.saveLogin(c.BaseURL, s.PlaintextAPIKey, org)
				if err := a.cfg.save(a.cfgPath); err != nil {
					return "", err
				}
				a.note("Approved. Saved credentials for %s to %s", dash(s.OrganizationName), a.cfgPath)
				return s.PlaintextAPIKey, nil
			}
		case a.ctx.Err() != nil:
			return "", withCode(exitError, "login interrupted")
		case st == 404 || st == 410:
			return "", withCode(exitNotFound, "login session expired or not found; run capydb login again")
		case st == 401:
			return "", withCode(exitAuth, "login session poll was rejected")
		case st != 0 && st < 500:
			return "", op("poll device login", err)
		default:
			failures++
			if failures >= maxPollErrors {
				return "", op("poll device login", err)
			}
		}
		if !sess.ExpiresAt.IsZero() && time.Now().After(sess.ExpiresAt) {
			return "", withCode(exitNotFound, "login session expired or not found; run capydb login again")
		}
		if bgsvc.Sleep(a.ctx, a.pace.loginPoll) != nil {
			return "", withCode(exitError, "login interrupted")
		}
	}
}

func hasDisplay() bool {
	switch runtime.GOOS {
	case "darwin", "windows":
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

func logoutCmd() *cobra.Command {
	return &cobra.Command{Use: "logout", Short: "Delete the saved credentials", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			err = os.Remove(a.cfgPath)
			removed := err == nil
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("while removing %s: %w", a.cfgPath, err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"logged_out": removed, "config_path": a.cfgPath})
			}
			if removed {
				fmt.Fprintf(a.out, "Logged out (removed %s).\n", a.cfgPath)
			} else {
				fmt.Fprintln(a.out, "Not logged in.")
			}
			return nil
		}}
}

func whoamiCmd() *cobra.Command {
	return &cobra.Command{Use: "whoami", Short: "Show who the API key belongs to", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, err := clientCmd(cmd, false, false)
			if err != nil {
				return err
			}
			me, h, err := c.MeWithHeader(a.ctx)
			if err != nil {
				return op("whoami", err)
			}
			src := me.Principal.AuthSource
			if src == "" {
				src = "api_key"
			}
			if a.json {
				// CLI.md §8's four keys, then what else a script needs to
				// know who it is: the server's principal object as sent,
				// its scopes, where the key came from, and the server (named
				// as error documents name it) with its version.
				scopes := me.Principal.Scopes
				if scopes == nil {
					scopes = []string{}
				}
				_, keyFrom := a.savedKey()
				if keyFrom == "" {
					keyFrom = "prompt"
				}
				out := map[string]any{"api_url": c.BaseURL, "server": c.BaseURL, "app_url": a.appURL(c.BaseURL),
					"auth_source": src, "organization": me.Organization, "principal": me.Principal,
					"scopes": scopes, "is_admin": me.Principal.IsAdmin, "api_key_id": nilIfEmpty(me.Principal.APIKeyID),
					"project_id": nilIfEmpty(me.Principal.ProjectID), "api_key": maskKey(c.APIKey), "api_key_from": keyFrom,
					"server_version": nilIfEmpty(h.Get("X-CapyDB-Version"))}
				return printJSON(a.out, out)
			}
			org := ""
			if o := me.Organization; o != nil {
				org = fmt.Sprintf("%s (%s, %s), plan %s", o.Name, o.Slug, o.ID, o.BillingPlan)
			}
			kv := [][2]string{{"api_url", c.BaseURL}, {"app_url", a.appURL(c.BaseURL)}, {"auth_source", src}, {"organization", org},
				{"scopes", strings.Join(me.Principal.Scopes, ",")}}
			if me.Principal.ProjectID != "" {
				kv = append(kv, [2]string{"project", me.Principal.ProjectID})
			}
			fields(a.out, kv)
			return nil
		}}
}

// nilIfEmpty is s, or JSON null for "".
func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func configShowCmd() *cobra.Command {
	return &cobra.Command{Use: "show", Short: "Print the resolved configuration (the key masked)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			api := a.apiURL(true)
			key, src := a.savedKey()
			active, _ := a.cfg.active()
			if a.json {
				return printJSON(a.out, map[string]any{"config_path": a.cfgPath, "active_org": active, "api_url": api,
					"app_url": a.appURL(api), "api_key": maskKey(key)})
			}
			kv := [][2]string{{"config_path", a.cfgPath}, {"active_org", active}, {"api_url", api}, {"app_url", a.appURL(api)},
				{"api_key", maskKey(key)}, {"api_key_from", src}}
			if a.link != nil {
				kv = append(kv, [2]string{"linked_project", a.link.ProjectID + " (" + linkPath(a.linkDir) + ")"})
			}
			fields(a.out, kv)
			return nil
		}}
}

type orgSummary struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Slug   string `json:"slug"`
	APIURL string `json:"api_url"`
	Active bool   `json:"active"`
}

func (a *app) orgSummaries() []orgSummary {
	active, _ := a.cfg.active()
	out := []orgSummary{}
	for _, id := range a.cfg.orgIDs() {
		e := a.cfg.Organizations[id]
		out = append(out, orgSummary{ID: id, Name: e.Name, Slug: e.Slug, APIURL: e.APIURL, Active: id == active})
	}
	return out
}

func orgsListCmd() *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List the organizations saved in the config", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			list := a.orgSummaries()
			return printList(a, "organizations", list, []string{"ACTIVE", "ID", "NAME", "SLUG", "API_URL"}, func(o orgSummary) []string {
				mark := ""
				if o.Active {
					mark = "*"
				}
				return []string{mark, o.ID, o.Name, o.Slug, o.APIURL}
			})
		}}
}

func orgsSwitchCmd() *cobra.Command {
	return &cobra.Command{Use: "switch <org-id|slug>", Short: "Make another saved organization active", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			for _, id := range a.cfg.orgIDs() {
				if e := a.cfg.Organizations[id]; id == args[0] || strings.EqualFold(e.Slug, args[0]) {
					a.cfg.ActiveOrg = id
					if err := a.cfg.save(a.cfgPath); err != nil {
						return err
					}
					for _, o := range a.orgSummaries() {
						if o.ID == id {
							if a.json {
								return printJSON(a.out, o)
							}
							fmt.Fprintf(a.out, "Now using %s (%s).\n", dash(o.Name), id)
						}
					}
					return nil
				}
			}
			return withCode(exitNotFound, "organization %q is not saved; log in to it with capydb login", args[0])
		}}
}
