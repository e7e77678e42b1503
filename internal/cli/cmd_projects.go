package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addProjectCommands) }

func addProjectCommands(root *cobra.Command) {
	root.AddCommand(createCmd("create"))

	projects := group("projects", "List and delete projects", "project")
	list := &cobra.Command{Use: "list", Short: "List projects", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, err := clientCmd(cmd, false, false)
			if err != nil {
				return err
			}
			ps, err := c.ListProjects(a.ctx)
			if err != nil {
				return op("list projects", err)
			}
			return printList(a, "projects", ps, []string{"ID", "NAME", "SLUG", "ENVIRONMENT", "PLAN", "STATE"}, func(p apiclient.Project) []string {
				return []string{p.ID, p.Name, p.Slug, p.Environment, p.Plan, p.State}
			})
		}}
	projects.AddCommand(list, createCmd("create"), projectsDeleteCmd(), projectsRetryCmd(), projectsSetEnvironmentCmd(), projectsAlwaysOnCmd())
	root.AddCommand(projects)

	root.AddCommand(linkCmd(), unlinkCmd())
	env := group("env", "Write the project's connection variables into env files")
	env.AddCommand(envPullCmd())
	root.AddCommand(env)

	regions := &cobra.Command{Use: "regions", Aliases: []string{"region"}, Short: "List regions", Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] != "list" {
				return usageError(fmt.Sprintf("unknown command %q for \"capydb regions\"", args[0]))
			}
			a, c, err := clientCmd(cmd, false, false)
			if err != nil {
				return err
			}
			rs, err := c.Regions(a.ctx)
			if err != nil {
				return op("list regions", err)
			}
			return printList(a, "regions", rs, []string{"REGION", "NAME", "LOCATION"}, func(r apiclient.RegionDetail) []string {
				return []string{r.ID, r.DisplayName, r.Location}
			})
		}}
	root.AddCommand(regions)

	root.AddCommand(&cobra.Command{Use: "postgres-versions", Short: "List the Postgres versions this server offers", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, err := clientCmd(cmd, false, false)
			if err != nil {
				return err
			}
			vs, err := c.PostgresVersions(a.ctx)
			if err != nil {
				return op("list postgres versions", err)
			}
			return printList(a, "versions", vs, []string{"VERSION", "CHANNEL", "DEFAULT", "PRODUCTION READY"}, func(v apiclient.PostgresVersion) []string {
				return []string{v.Version, v.Channel, yesNo(v.Default), yesNo(v.ProductionReady)}
			})
		}})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// createOpts are the flags of create.
type createOpts struct {
	name, slug, region, environment, postgresVersion, envFile string
	overwriteEnv, nonInteractive                              bool
	wait                                                      waitOpts
}

func createCmd(use string) *cobra.Command {
	var o createOpts
	cmd := &cobra.Command{
		Use:   use,
		Short: "Create a project, wait until it is ready, link this directory and write its env file",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			return a.runCreate(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "project name (default: the directory's name)")
	f.StringVar(&o.slug, "slug", "", "project slug (default: derived from the name)")
	f.StringVar(&o.region, "region", "", "region id (see capydb regions)")
	f.StringVar(&o.environment, "environment", "", "production (default) or non_production")
	f.StringVar(&o.postgresVersion, "postgres-version", "", "Postgres major version (see capydb postgres-versions)")
	f.StringVar(&o.envFile, "env-file", "", "env file to write (default: detected from the stack)")
	f.BoolVar(&o.overwriteEnv, "overwrite-env", false, "overwrite different values in the env file without asking")
	f.BoolVar(&o.nonInteractive, "non-interactive", false, "never ask questions")
	f.BoolVar(&o.nonInteractive, "yes", false, "alias of --non-interactive")
	_ = f.MarkHidden("yes")
	// create always waits; --wait is accepted for scripts written for other commands.
	addWaitFlags(cmd, &o.wait, true, 30*time.Minute)
	return cmd
}

// createFailure is create's JSON document on failure (CLI.md §8).
type createFailure struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Action  string `json:"action,omitempty"`
	Command string `json:"command,omitempty"`
}

func (a *app) runCreate(o createOpts) error {
	if o.environment != "" && o.environment != "production" && o.environment != "non_production" {
		return usageError("--environment must be production or non_production")
	}
	if o.nonInteractive {
		a.interactive = false
	}
	name := strings.TrimSpace(o.name)
	if name == "" {
		name = filepath.Base(a.cwd)
	}
	fail := func(kind string, err error, action, command string) error {
		if a.json {
			_ = printJSON(a.out, createFailure{Error: kind, Message: errorMessage(err), Action: action, Command: command})
		}
		return err
	}
	if err := a.confirmCreateInLinkedDir(); err != nil {
		return fail("create_failed", err, "run capydb create in another directory, or capydb unlink first", "capydb unlink")
	}
	c, err := a.client(false, true)
	if err != nil {
		if exitCode(err) == exitAuth {
			return fail("auth_required", err, "run capydb login", "capydb login")
		}
		return err
	}
	me, err := c.Me(a.ctx)
	if err != nil {
		return fail("create_failed", op("check your organization", err), "", "")
	}
	if org := me.Organization; org != nil &&
		(org.BillingPlan == "" || org.BillingPlan == "none" || (org.BillingStatus != "active" && org.BillingStatus != "trialing")) {
		return fail("billing_inactive", withCode(exitError, "organization %s has no active plan", org.Slug), "ask the operator to set a plan", "")
	}
	region := o.region
	if region == "" && a.interactive {
		if rs, err := c.Regions(a.ctx); err == nil && len(rs) > 1 {
			labels := make([]string, len(rs))
			for i, r := range rs {
				labels[i] = r.ID + " (" + r.DisplayName + ")"
			}
			i, err := a.choose("Which region?", labels)
			if err != nil {
				return err
			}
			region = rs[i].ID
		}
	}
	p, job, err := c.CreateProject(a.ctx, apiclient.CreateProjectRequest{Name: name, Slug: o.slug, Environment: o.environment,
		Region: region, PostgresVersion: o.postgresVersion})
	if err != nil {
		return fail("create_failed", op("create project", err), "", "")
	}
	a.note("Creating project %s (%s)...", p.Name, p.ID)
	final, err := a.waitJob(c, job, o.wait.timeout, "provisioning "+p.Name)
	if err != nil {
		return fail("create_failed", err, "", "capydb jobs get --job-id "+job.ID)
	}
	if p, err = c.GetProject(a.ctx, p.ID); err != nil {
		return fail("create_failed", op("read the new project", err), "", "")
	}
	if a.link != nil {
		// The person agreed to move the link to the new project: the same
		// link file and the same env file now name it.
		o.overwriteEnv = true
		if o.envFile == "" && a.link.EnvFile != "" {
			o.envFile = filepath.Join(a.linkDir, filepath.FromSlash(a.link.AppPath), filepath.FromSlash(a.link.EnvFile))
		}
	}
	res, err := a.linkProject(c, p, o.envFile, envAsk, o.overwriteEnv)
	if err != nil {
		return fail("create_failed", fmt.Errorf("created project %s (%s) but did not link it: %w", p.Name, p.ID, err),
			"run capydb link --project "+p.ID, "capydb link --project "+p.ID)
	}
	if a.json {
		return printJSON(a.out, map[string]any{
			"project_id": p.ID, "project_name": p.Name, "project_slug": p.Slug, "region": p.Region,
			"env_file": res.EnvFile, "env_vars": res.EnvVars, "framework": res.Framework,
			"job_id": final.ID, "job_state": final.State, "postgres_version": p.PostgresVersion,
			"postgres_channel": p.PostgresChannel, "postgres_warning": p.PostgresWarning,
			"project": p, "job": final,
		})
	}
	fmt.Fprintf(a.out, "Created project %s (%s, %s) in %s, Postgres %s.\n", p.Name, p.Slug, p.ID, p.Region, p.PostgresVersion)
	a.printLinkResult(res)
	return nil
}

// confirmCreateInLinkedDir stops create in a directory that is already
// linked: a second project there would leave the link and the env file to
// disagree, or silently re-point both. On a terminal it asks once; otherwise
// it refuses (exit 5) before anything is created.
func (a *app) confirmCreateInLinkedDir() error {
	if a.link == nil {
		return nil
	}
	linked := fmt.Sprintf("project %s (%s)", a.link.ProjectName, a.link.ProjectID)
	if !a.interactive {
		return withCode(exitConflict, "this directory is already linked to %s (%s); nothing was created. "+
			"Run capydb create in another directory, or capydb unlink first to link this one to a new project", linked, linkPath(a.linkDir))
	}
	ok, err := a.confirm(fmt.Sprintf("This directory is linked to %s. Create a new project and point the link and the env file at it instead?", linked))
	if err != nil {
		return err
	}
	if !ok {
		return withCode(exitConflict, "kept the link to %s; nothing was created", linked)
	}
	return nil
}

// linkResult is what linking wrote.
type linkResult struct {
	ProjectID string   `json:"project_id"`
	EnvFile   string   `json:"env_file"`
	EnvVars   []string `json:"env_vars"`
	Framework string   `json:"-"`
	LinkFile  string   `json:"-"`
	// CAFile is the server's CA the URLs verify against ("" when the
	// server hands out none).
	CAFile string `json:"ca_file,omitempty"`
}

func (a *app) printLinkResult(r *linkResult) {
	if r.CAFile != "" {
		fmt.Fprintf(a.out, "Wrote the server's CA certificate to %s\n", r.CAFile)
	}
	fmt.Fprintf(a.out, "Wrote %s to %s\n", strings.Join(r.EnvVars, ", "), r.EnvFile)
	fmt.Fprintf(a.out, "Linked %s\n", r.LinkFile)
}

// linkProject writes the env file and .capydb/project.json for p, and makes
// .gitignore list both. An existing link of the same project keeps its app
// path, stack and env file.
func (a *app) linkProject(c *apiclient.Client, p *apiclient.Project, envFileFlag string, mode envWriteMode, overwrite bool) (*linkResult, error) {
	base := a.cwd
	var st stack
	envFile := ""
	if a.link != nil && a.link.ProjectID == p.ID && a.link.Framework != "" {
		base = a.linkDir
		st = stack{AppPath: a.link.AppPath, Framework: a.link.Framework, Layer: a.link.DatabaseLayer}
		envFile = a.link.EnvFile
	} else {
		if a.link != nil {
			base = a.linkDir
		}
		var err error
		if st, err = a.detectStack(base); err != nil {
			return nil, err
		}
	}
	appDir := filepath.Join(base, filepath.FromSlash(st.AppPath))
	if envFile == "" {
		envFile = defaultEnvFile(appDir, st)
	}
	envPath := filepath.Join(appDir, filepath.FromSlash(envFile))
	if envFileFlag != "" {
		envPath = envFileFlag
		if !filepath.IsAbs(envPath) {
			envPath = filepath.Join(a.cwd, envPath)
		}
		rel, err := filepath.Rel(appDir, envPath)
		if err != nil {
			rel = envPath
		}
		envFile = filepath.ToSlash(rel)
	}
	conn, err := c.Connections(a.ctx, p.ID)
	if err != nil {
		return nil, op("read the connection URLs", err)
	}
	vars := envVarsFor(st, conn)
	caPath, err := filepath.Abs(filepath.Join(base, linkDirName, caFileName))
	if err != nil {
		return nil, err
	}
	haveCA, err := a.writeCA(c, caPath)
	if err != nil {
		return nil, err
	}
	if haveCA {
		// Absolute: libpq, node-postgres and pgx resolve a relative path
		// against the process's directory, Prisma against prisma/.
		pgjs := usesPostgresJS(appDir)
		vars = verifyingVars(vars, st, caPath, pgjs)
		if pgjs && !a.json {
			a.note("note: postgres.js takes no CA from a URL: its URLs keep sslmode=require; verify with postgres(url, { ssl: { ca: readFileSync(process.env.PGSSLROOTCERT) } }) (docs/tls.md)")
		}
	} else {
		// A CA from before (the operator switched to a publicly trusted
		// certificate) would only mislead doctor and readers.
		_ = os.Remove(caPath)
		caPath = ""
	}
	if _, err := a.writeEnvFile(envPath, vars, mode, overwrite); err != nil {
		var d *envDeclined
		if errors.As(err, &d) {
			// The link and the env file always name the same project:
			// without the env file, no link either.
			return nil, withCode(exitConflict, "%v, so this directory was not linked to %s; run capydb link --project %s --overwrite-env to replace them, or pass --env-file <another file>",
				err, p.Name, p.ID)
		}
		return nil, err
	}
	dbVar, directVar, pooledVar := linkVarNames(st)
	l := &projectLink{
		ProjectID: p.ID, ProjectName: p.Name, ProjectSlug: p.Slug, OrganizationID: p.OrganizationID,
		APIURL: c.BaseURL, Region: p.Region, AppPath: st.AppPath, Framework: st.Framework,
		DatabaseLayer: st.Layer, Profile: st.Profile(), EnvFile: envFile,
		DatabaseURLVar: dbVar, DirectURLVar: directVar, PooledURLVar: pooledVar,
	}
	if err := writeLink(base, l); err != nil {
		return nil, err
	}
	a.link, a.linkDir = l, base
	if err := ensureGitignore(base, linkDirName+"/", envPath); err != nil {
		a.note("warning: %v", err)
	}
	shown := envPath
	if r, err := filepath.Rel(a.cwd, envPath); err == nil && !strings.HasPrefix(r, "..") {
		shown = r
	}
	linkShown := linkPath(base)
	if r, err := filepath.Rel(a.cwd, linkShown); err == nil && !strings.HasPrefix(r, "..") {
		linkShown = r
	}
	caShown := caPath
	if r, err := filepath.Rel(a.cwd, caPath); caPath != "" && err == nil && !strings.HasPrefix(r, "..") {
		caShown = r
	}
	return &linkResult{ProjectID: p.ID, EnvFile: shown, EnvVars: envNames(vars), Framework: st.Framework,
		LinkFile: linkShown, CAFile: caShown}, nil
}

func linkCmd() *cobra.Command {
	var envFile string
	var overwrite bool
	cmd := &cobra.Command{Use: "link", Short: "Link this directory to a project and write its env file", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, err := clientCmd(cmd, true, true)
			if err != nil {
				return err
			}
			p, err := a.resolveProject(c, a.project, false)
			if err != nil {
				return err
			}
			if a.link != nil && a.link.ProjectID != p.ID {
				a.link = nil // linking another project: detect the stack afresh
			}
			res, err := a.linkProject(c, p, envFile, envAsk, overwrite)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, res)
			}
			fmt.Fprintf(a.out, "Linked to project %s (%s).\n", p.Name, p.ID)
			a.printLinkResult(res)
			return nil
		}}
	cmd.Flags().StringVar(&envFile, "env-file", "", "env file to write (default: detected from the stack)")
	cmd.Flags().BoolVar(&overwrite, "overwrite-env", false, "overwrite different values without asking")
	return cmd
}

func unlinkCmd() *cobra.Command {
	return &cobra.Command{Use: "unlink", Short: "Remove .capydb/project.json", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			if a.link == nil {
				if a.json {
					return printJSON(a.out, map[string]any{"unlinked": false})
				}
				fmt.Fprintln(a.out, "This directory is not linked.")
				return nil
			}
			path := linkPath(a.linkDir)
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("while removing %s: %w", path, err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"unlinked": true, "project_id": a.link.ProjectID})
			}
			fmt.Fprintf(a.out, "Unlinked project %s (removed %s).\n", a.link.ProjectID, path)
			return nil
		}}
}

func envPullCmd() *cobra.Command {
	var envFile string
	cmd := &cobra.Command{Use: "pull", Short: "Refresh the linked project's variables in its env file", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, err := clientCmd(cmd, true, true)
			if err != nil {
				return err
			}
			p, err := a.resolveProject(c, a.project, true)
			if err != nil {
				return err
			}
			if a.link != nil && a.link.ProjectID != p.ID {
				a.note("note: relinking this directory from %s to %s", a.link.ProjectID, p.ID)
			}
			res, err := a.linkProject(c, p, envFile, envRefresh, false)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, res)
			}
			a.printLinkResult(res)
			return nil
		}}
	cmd.Flags().StringVar(&envFile, "env-file", "", "env file to write (default: the linked one, or detected from the stack)")
	return cmd
}

func projectsDeleteCmd() *cobra.Command {
	var confirmed bool
	var token string
	var w waitOpts
	cmd := &cobra.Command{Use: "delete <project>", Short: "Delete a project (its previews, backups and data)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			if token == "" {
				token = os.Getenv("CAPYDB_APPROVAL_TOKEN")
			}
			c, err := a.client(false, false)
			if err != nil {
				return err
			}
			p, err := a.resolveProject(c, args[0], false)
			if err != nil {
				return err
			}
			if p.Environment != "non_production" && token == "" {
				return withCode(exitConflict, "project %s is a production project: deleting it needs an approval token "+
					"(--approval-token or CAPYDB_APPROVAL_TOKEN), minted by an organization admin on the project settings page "+
					"%s/dashboard/projects/%s/settings or with POST /v1/projects/%s/approvals {\"action\": \"project.delete\"}",
					p.Name, a.appURL(c.BaseURL), p.ID, p.ID)
			}
			if err := a.retypeName(p.Name, "delete project "+p.Name+" and all its data", confirmed); err != nil {
				return err
			}
			job, err := c.DeleteProject(a.ctx, p.ID, token)
			if err != nil {
				return op("delete project", err)
			}
			return a.finishJob(c, job, w, "deleting "+p.Name)
		}}
	f := cmd.Flags()
	f.BoolVar(&confirmed, "confirm", false, "do not ask to retype the name")
	f.BoolVar(&confirmed, "yes", false, "alias of --confirm")
	_ = f.MarkHidden("yes")
	f.StringVar(&token, "approval-token", "", "approval token for production projects (default $CAPYDB_APPROVAL_TOKEN)")
	addWaitFlags(cmd, &w, false, 30*time.Minute)
	return cmd
}

// projectsRetryCmd is `projects retry <project>`: provision again a project
// that failed while provisioning (the server's 409 says why it cannot).
func projectsRetryCmd() *cobra.Command {
	var w waitOpts
	cmd := &cobra.Command{Use: "retry <project>", Short: "Retry provisioning a project that failed while provisioning", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := newApp(cmd)
			if err != nil {
				return err
			}
			c, err := a.client(false, false)
			if err != nil {
				return err
			}
			p, err := a.resolveProject(c, args[0], false)
			if err != nil {
				return err
			}
			job, err := c.RetryProvisioning(a.ctx, p.ID)
			if err != nil {
				return op("retry provisioning", err)
			}
			return a.finishJob(c, job, w, "provisioning "+p.Name)
		}}
	addWaitFlags(cmd, &w, false, 30*time.Minute)
	return cmd
}

// projectPatchCmd builds a command that PATCHes one field of the project.
func projectPatchCmd(use, short string, parse func(arg string) (map[string]any, error)) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := parse(args[0])
			if err != nil {
				return err
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			if p, err = c.UpdateProject(a.ctx, p.ID, body); err != nil {
				return op("update project", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"project": p})
			}
			fmt.Fprintf(a.out, "Project %s: environment %s, always_on %t.\n", p.Name, p.Environment, p.AlwaysOn)
			return nil
		}}
}

func projectsSetEnvironmentCmd() *cobra.Command {
	return projectPatchCmd("set-environment <production|non_production>", "Mark the project production or non_production",
		func(arg string) (map[string]any, error) {
			if arg != "production" && arg != "non_production" {
				return nil, usageError("the environment must be production or non_production")
			}
			return map[string]any{"environment": arg}, nil
		})
}

func projectsAlwaysOnCmd() *cobra.Command {
	return projectPatchCmd("always-on <on|off>", "Set the project's always_on flag (kept for compatibility)",
		func(arg string) (map[string]any, error) {
			switch strings.ToLower(arg) {
			case "on", "true", "yes":
				return map[string]any{"always_on": true}, nil
			case "off", "false", "no":
				return map[string]any{"always_on": false}, nil
			}
			return nil, usageError("always-on takes on or off")
		})
}
