package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/capydb/capydb/internal/apiclient"
)

// defaultAPIURL is the self-hosted CLI's default: the server's default listen address.
const defaultAPIURL = "http://127.0.0.1:8080"

func init() { registrars = append(registrars, addGlobalFlags) }

// addGlobalFlags defines the flags every client command accepts (CLI.md §1).
func addGlobalFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringP("output", "o", "text", "output format: text or json")
	pf.String("api-url", "", "API base URL (default: $CAPYDB_API_URL, the linked project, the saved login, "+defaultAPIURL+")")
	pf.String("api-key", "", "API key capy_live_... (default: $CAPYDB_API_KEY, the saved login)")
	pf.String("app-url", "", "dashboard base URL for device login (default: $CAPYDB_APP_URL, the API URL)")
	pf.String("project", "", "project id, slug or name (default: the linked project)")
	pf.Bool("show-secrets", false, "show database passwords in human output (masked as **** otherwise)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if o, _ := cmd.Flags().GetString("output"); o != "text" && o != "json" {
			return usageError(fmt.Sprintf("--output must be text or json, not %q", o))
		}
		return nil
	}
}

// app is what a client command works with: resolved flags, streams, the
// user config and the project link.
type app struct {
	ctx      context.Context
	cmd      *cobra.Command
	out, err io.Writer
	in       io.Reader
	json     bool
	// showSecrets unmasks passwords in human output (--show-secrets).
	showSecrets bool

	flagAPIURL, flagAPIKey, flagAppURL, project string

	pace pacing // waits between retries and polls

	cfgPath string
	cfg     *userConfig
	cwd     string
	link    *projectLink // nil when the directory is not linked
	linkDir string

	// stdinTTY/stderrTTY describe the streams; interactive allows prompts.
	stdinTTY, stderrTTY, interactive bool
}

func newApp(cmd *cobra.Command) (*app, error) {
	f := cmd.Flags()
	str := func(name string) string { v, _ := f.GetString(name); return v }
	a := &app{
		ctx: cmd.Context(), cmd: cmd, out: cmd.OutOrStdout(), err: cmd.ErrOrStderr(), in: cmd.InOrStdin(),
		json:       str("output") == "json",
		flagAPIURL: str("api-url"), flagAPIKey: str("api-key"), flagAppURL: str("app-url"), project: str("project"),
	}
	if a.ctx == nil {
		a.ctx = context.Background()
	}
	a.showSecrets, _ = f.GetBool("show-secrets")
	a.pace = pacingFrom(a.ctx)
	a.stdinTTY = isTerminal(a.in)
	if v, ok := a.ctx.Value(stdinTerminalKey{}).(bool); ok {
		a.stdinTTY = v // a test answering prompts through a pipe
	}
	a.stderrTTY = isTerminal(a.err)
	a.interactive = a.stdinTTY && !isCI()
	var err error
	if a.cfgPath, err = configPath(); err != nil {
		return nil, err
	}
	if a.cfg, err = loadConfig(a.cfgPath); err != nil {
		return nil, err
	}
	if a.cwd, err = os.Getwd(); err != nil {
		return nil, err
	}
	if a.link, a.linkDir, err = findLink(a.cwd); err != nil {
		return nil, err
	}
	return a, nil
}

// stdinTerminalKey in the context overrides whether stdin counts as a
// terminal; tests use it to drive prompts (like pacing, never a global).
type stdinTerminalKey struct{}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// notInteractiveReason says why the CLI will not prompt ("" when it may).
func (a *app) notInteractiveReason() string {
	switch {
	case a.interactive:
		return ""
	case isCI():
		return "CI is set"
	case !a.stdinTTY:
		return "standard input is not a terminal"
	}
	return "--non-interactive was given"
}

func isCI() bool { return strings.EqualFold(os.Getenv("CI"), "true") }

// apiURL resolves the API base URL (CLI.md §3); the link's api_url counts
// only for project-scoped commands.
func (a *app) apiURL(projectScoped bool) string {
	u := a.flagAPIURL
	if u == "" {
		u = os.Getenv("CAPYDB_API_URL")
	}
	if u == "" && projectScoped && a.link != nil {
		u = a.link.APIURL
	}
	if u == "" {
		if _, e := a.cfg.active(); e != nil {
			u = e.APIURL
		}
	}
	if u == "" {
		u = defaultAPIURL
	}
	return strings.TrimRight(u, "/")
}

// appURL resolves the dashboard URL: flag, env, saved entry, then the API URL
// without a trailing /api/capydb.
func (a *app) appURL(apiURL string) string {
	u := a.flagAppURL
	if u == "" {
		u = os.Getenv("CAPYDB_APP_URL")
	}
	if u == "" {
		if _, e := a.cfg.active(); e != nil {
			u = e.AppURL
		}
	}
	if u == "" {
		u = strings.TrimSuffix(apiURL, "/api/capydb")
	}
	return strings.TrimRight(u, "/")
}

// savedKey is the key from flag, env or config ("" when none), and where it came from.
func (a *app) savedKey() (string, string) {
	if a.flagAPIKey != "" {
		return a.flagAPIKey, "flag"
	}
	if k := os.Getenv("CAPYDB_API_KEY"); k != "" {
		return k, "env"
	}
	if _, e := a.cfg.active(); e != nil && e.APIKey != "" {
		return e.APIKey, "config"
	}
	return "", ""
}

// httpTimeout is CAPYDB_HTTP_TIMEOUT (a Go duration > 0) or 30 s.
func httpTimeout() (time.Duration, error) {
	v := os.Getenv("CAPYDB_HTTP_TIMEOUT")
	if v == "" {
		return apiclient.DefaultTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, usageError(fmt.Sprintf("CAPYDB_HTTP_TIMEOUT must be a positive Go duration such as 45s or 2m, not %q", v))
	}
	return d, nil
}

// anonClient is a client for base with no key.
func (a *app) anonClient(base string) (*apiclient.Client, error) {
	t, err := httpTimeout()
	if err != nil {
		return nil, err
	}
	c := apiclient.New(base, "", Version, t)
	c.Delays = a.pace.retryDelays
	return c, nil
}

// client returns an authenticated client. Without any key it prompts on a
// terminal; otherwise it fails with exit 3, or (login=true: create, link,
// env pull) starts the device login.
func (a *app) client(projectScoped, login bool) (*apiclient.Client, error) {
	base := a.apiURL(projectScoped)
	c, err := a.anonClient(base)
	if err != nil {
		return nil, err
	}
	key, _ := a.savedKey()
	if key == "" && !a.interactive {
		// Nobody can approve a device login or type a key here (CLI.md §3):
		// fail at once with the fix instead of waiting for an approval.
		return nil, noCredentials(base, a.notInteractiveReason())
	}
	if key == "" && login {
		if key, err = a.deviceLogin(c, loginOptions{}); err != nil {
			return nil, err
		}
	}
	if key == "" {
		if key, err = a.promptSecret("CapyDB API key: "); err != nil {
			return nil, err
		}
	}
	if key == "" {
		return nil, noCredentials(base, "")
	}
	c.APIKey = key
	return c, nil
}

// orgID is the organization for organization routes: the saved entry's id
// when that entry's key is the one in use, otherwise GET /v1/me.
func (a *app) orgID(c *apiclient.Client) (string, error) {
	if id, e := a.cfg.active(); e != nil && id != defaultOrgKey && e.APIKey == c.APIKey {
		return id, nil
	}
	me, err := c.Me(a.ctx)
	if err != nil {
		return "", op("find your organization", err)
	}
	if me.Organization == nil {
		return "", withCode(exitAuth, "this credential belongs to no organization")
	}
	return me.Organization.ID, nil
}

// readLine reads one line from stdin; Ctrl-C interrupts it.
func (a *app) readLine() (string, error) {
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := bufio.NewReader(a.in).ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil && r.s == "" {
			return "", fmt.Errorf("no answer on standard input")
		}
		return r.s, nil
	case <-a.ctx.Done():
		return "", fmt.Errorf("interrupted")
	}
}

// prompt asks a question on stderr and reads the answer.
func (a *app) prompt(question string) (string, error) {
	fmt.Fprint(a.err, question)
	return a.readLine()
}

// promptSecret reads a secret without echo.
func (a *app) promptSecret(question string) (string, error) {
	fmt.Fprint(a.err, question)
	f, ok := a.in.(*os.File)
	if !ok {
		return a.readLine()
	}
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.err)
	if err != nil {
		return "", fmt.Errorf("while reading the key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// confirm asks a yes/no question (default no).
func (a *app) confirm(question string) (bool, error) {
	ans, err := a.prompt(question + " [y/N] ")
	if err != nil {
		return false, err
	}
	ans = strings.ToLower(ans)
	return ans == "y" || ans == "yes", nil
}

// retypeName makes a person type the project name (or "yes") before a
// destructive action; without a terminal --confirm is required.
func (a *app) retypeName(name, what string, confirmed bool) error {
	if confirmed {
		return nil
	}
	if !a.interactive {
		return usageError("refusing to " + what + " without --confirm (not running on a terminal)")
	}
	ans, err := a.prompt(fmt.Sprintf("This will %s. Type the project name (%s) or yes to continue: ", what, name))
	if err != nil {
		return err
	}
	if ans != name && !strings.EqualFold(ans, "yes") {
		return usageError("not confirmed; nothing was changed")
	}
	return nil
}

// choose lets a person pick one of labels on a terminal.
func (a *app) choose(title string, labels []string) (int, error) {
	fmt.Fprintln(a.err, title)
	for i, l := range labels {
		fmt.Fprintf(a.err, "  %d) %s\n", i+1, l)
	}
	ans, err := a.prompt("Choose 1-" + strconv.Itoa(len(labels)) + ": ")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(ans)
	if err != nil || n < 1 || n > len(labels) {
		return 0, usageError(fmt.Sprintf("%q is not a choice", ans))
	}
	return n - 1, nil
}

// note prints a line for people on stderr (never on stdout, which may carry JSON).
func (a *app) note(format string, args ...any) {
	fmt.Fprintf(a.err, format+"\n", args...)
}
