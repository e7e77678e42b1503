package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

// Database settings, pooler settings, read-only mode and extensions
// (docs/database-settings.md).

func init() { registrars = append(registrars, addSettingsCommands) }

func addSettingsCommands(root *cobra.Command) {
	db := sharedGroup(root, "db", "The project's database: checks and settings")
	settings := group("settings", "Per-project Postgres settings (work_mem, statement_timeout, ...)")
	settings.AddCommand(dbSettingsGetCmd(), dbSettingsSetCmd())
	db.AddCommand(settings)
	pooler := group("pooler", "The project's pgBouncer settings (pool size, pool mode)")
	pooler.AddCommand(poolerGetCmd(), poolerSetCmd())
	ro := group("readonly", "Read-only mode of the project's database", "read-only")
	ro.AddCommand(readOnlyCmd("on", "Make the database read-only (writes fail with SQLSTATE 25006)", true),
		readOnlyCmd("off", "Allow writes again", false), readOnlyStatusCmd(), writeWindowCmd())
	ext := group("extensions", "Extensions of the project's database", "extension", "ext")
	ext.AddCommand(extensionsListCmd(), extensionCmd("enable"), extensionCmd("disable"), extensionCmd("update"))
	root.AddCommand(pooler, ro, ext)
}

func dbSettingsGetCmd() *cobra.Command {
	return &cobra.Command{Use: "get", Short: "Show the project's Postgres settings (as written)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, _, _, st, err := projectFetch(cmd, "read the database settings", (*apiclient.Client).GetDatabaseSettings)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string]any{"database_settings": st})
			}
			kv := [][2]string{{"connection_limit", fmt.Sprintf("%d (plan: %d)", st.ConnectionLimit, st.MaxConnectionLimit)},
				{"read_only", strconv.FormatBool(st.ReadOnly)}}
			for _, n := range st.AllowedSettings {
				v := st.Settings[n]
				if v == "" {
					v = "(default)"
				}
				kv = append(kv, [2]string{n, v})
			}
			fields(a.out, kv)
			return nil
		}}
}

func dbSettingsSetCmd() *cobra.Command {
	var reset []string
	var connLimit int
	var w waitOpts
	cmd := &cobra.Command{Use: "set [name=value ...]", Short: "Change Postgres settings (job project.settings_update)",
		Example: "  capydb db settings set work_mem=64MB statement_timeout=30s\n  capydb db settings set --reset work_mem",
		RunE: func(cmd *cobra.Command, args []string) error {
			set := map[string]string{}
			for _, arg := range args {
				k, v, ok := strings.Cut(arg, "=")
				if !ok || k == "" {
					return usageError(fmt.Sprintf("settings are name=value, got %q", arg))
				}
				set[k] = v
			}
			var limit *int
			if cmd.Flags().Changed("connection-limit") {
				limit = &connLimit
			}
			if len(set) == 0 && len(reset) == 0 && limit == nil {
				return usageError("name=value arguments, --reset or --connection-limit are required")
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			job, err := c.UpdateDatabaseSettings(a.ctx, p.ID, set, reset, limit)
			if err != nil {
				return op("change the database settings", err)
			}
			return a.finishJob(c, job, w, "settings change of "+p.Name)
		}}
	cmd.Flags().StringSliceVar(&reset, "reset", nil, "settings to return to the default (repeatable)")
	cmd.Flags().IntVar(&connLimit, "connection-limit", 0, "the login role's connection limit (up to the plan's)")
	addWaitFlags(cmd, &w, true, 5*time.Minute)
	return cmd
}

func poolerGetCmd() *cobra.Command {
	return &cobra.Command{Use: "get", Short: "Show the project's pgBouncer settings", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, _, _, ps, err := projectFetch(cmd, "read the pooler settings", (*apiclient.Client).GetPoolerSettings)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string]any{"pooler_settings": ps})
			}
			fields(a.out, [][2]string{{"pool_mode", ps.PoolMode}, {"pool_size", strconv.Itoa(ps.PoolSize)},
				{"max_db_connections", strconv.Itoa(ps.MaxDBConnections)}, {"default_pool_size", strconv.Itoa(ps.DefaultPoolSize)}})
			return nil
		}}
}

func poolerSetCmd() *cobra.Command {
	var size int
	var mode string
	var w waitOpts
	cmd := &cobra.Command{Use: "set", Short: "Change pool size or pool mode (job project.pooler_update)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if size == 0 && mode == "" {
				return usageError("--pool-size or --pool-mode is required")
			}
			if mode != "" && !slices.Contains([]string{"transaction", "session"}, mode) {
				return usageError("--pool-mode must be transaction or session")
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			job, err := c.UpdatePoolerSettings(a.ctx, p.ID, size, mode)
			if err != nil {
				return op("change the pooler settings", err)
			}
			return a.finishJob(c, job, w, "pooler change of "+p.Name)
		}}
	cmd.Flags().IntVar(&size, "pool-size", 0, "server connections per pool (up to max_db_connections)")
	cmd.Flags().StringVar(&mode, "pool-mode", "", "transaction or session (the pooled URL's mode)")
	addWaitFlags(cmd, &w, true, 5*time.Minute)
	return cmd
}

func readOnlyCmd(use, short string, on bool) *cobra.Command {
	var w waitOpts
	cmd := &cobra.Command{Use: use, Short: short, Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			job, err := c.SetReadOnly(a.ctx, p.ID, on)
			if err != nil {
				return op("switch read-only mode", err)
			}
			return a.finishJob(c, job, w, "read-only "+use+" for "+p.Name)
		}}
	addWaitFlags(cmd, &w, true, 5*time.Minute)
	return cmd
}

func writeWindowCmd() *cobra.Command {
	var w waitOpts
	cmd := &cobra.Command{Use: "window", Short: "Allow writes for 15 minutes, then read-only again", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			job, err := c.OpenWriteWindow(a.ctx, p.ID)
			if err != nil {
				return op("open a write window", err)
			}
			return a.finishJob(c, job, w, "write window for "+p.Name)
		}}
	addWaitFlags(cmd, &w, true, 5*time.Minute)
	return cmd
}

func readOnlyStatusCmd() *cobra.Command {
	return &cobra.Command{Use: "status", Short: "Show whether the database is read-only", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, _, _, st, err := projectFetch(cmd, "read the read-only mode", (*apiclient.Client).GetReadOnly)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string]any{"read_only": st})
			}
			fields(a.out, [][2]string{{"enabled", strconv.FormatBool(st.Enabled)}, {"write_window_until", tsp(st.OverrideActiveUntil)}})
			return nil
		}}
}

func extensionsListCmd() *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List the extensions the project may enable", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, _, _, list, err := projectFetch(cmd, "list extensions", (*apiclient.Client).ListExtensions)
			if err != nil {
				return err
			}
			return printList(a, "extensions", list, []string{"NAME", "CATEGORY", "ENABLED", "TRUSTED", "RESTART", "VERSION", "UPDATE", "DESCRIPTION"},
				func(e apiclient.ProjectExtensionStatus) []string {
					v := e.InstalledVersion
					if v == "" {
						v = e.DefaultVersion
					}
					upd := ""
					if e.UpdateAvailable {
						upd = e.AvailableVersion
					}
					return []string{e.Name, e.Category, strconv.FormatBool(e.Enabled), strconv.FormatBool(e.Trusted),
						strconv.FormatBool(e.RequiresRestart), v, upd, e.Description}
				})
		}}
}

func extensionCmd(verb string) *cobra.Command {
	var w waitOpts
	cmd := &cobra.Command{Use: verb + " <name>", Short: strings.ToUpper(verb[:1]) + verb[1:] + " an extension", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			call := map[string]func(*apiclient.Client) (*apiclient.Job, error){
				"enable":  func(c *apiclient.Client) (*apiclient.Job, error) { return c.EnableExtension(a.ctx, p.ID, args[0]) },
				"disable": func(c *apiclient.Client) (*apiclient.Job, error) { return c.DisableExtension(a.ctx, p.ID, args[0]) },
				"update":  func(c *apiclient.Client) (*apiclient.Job, error) { return c.UpdateExtension(a.ctx, p.ID, args[0]) },
			}[verb]
			job, err := call(c)
			if err != nil {
				return op(verb+" extension "+args[0], err)
			}
			return a.finishJob(c, job, w, verb+" "+args[0]+" on "+p.Name)
		}}
	addWaitFlags(cmd, &w, true, 10*time.Minute)
	return cmd
}
