package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addPreviewCommands) }

func addPreviewCommands(root *cobra.Command) {
	pv := group("preview", "Preview databases: short-lived copies or empty databases next to a project", "previews")
	pv.AddCommand(previewListCmd(), previewCreateCmd(), previewResetCmd(), previewExtendCmd(), previewDeleteCmd())
	root.AddCommand(pv)
}

func previewListCmd() *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List the project's previews", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, _, list, err := projectFetch(cmd, "list previews", (*apiclient.Client).ListPreviews)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string]any{"previews": list})
			}
			a.previewTable(c, list)
			return nil
		}}
}

// previewTable prints previews with their URLs (read per preview; a preview
// being deleted has none).
func (a *app) previewTable(c *apiclient.Client, list []apiclient.PreviewDatabase) {
	rows := make([][]string, len(list))
	for i, p := range list {
		var direct, pooled string
		if p.State != "deleting" {
			if conn, err := c.PreviewConnections(a.ctx, p.ID); err == nil {
				direct, pooled = a.shownURL(conn.DirectURL), a.shownURL(conn.PooledURL)
			}
		}
		rows[i] = []string{p.ID, p.Name, p.Mode, p.State, ts(p.TTLExpiresAt), direct, pooled}
	}
	table(a.out, []string{"ID", "NAME", "MODE", "STATE", "TTL_EXPIRES_AT", "DIRECT_URL", "POOLED_URL"}, rows)
}

func validTTL(ttl int, zeroOK bool) error {
	if (ttl == 0 && zeroOK) || (ttl >= 1 && ttl <= 168) {
		return nil
	}
	return usageError("--ttl-hours must be between 1 and 168")
}

func previewCreateCmd() *cobra.Command {
	var mode, name string
	var ttl int
	var w waitOpts
	cmd := &cobra.Command{Use: "create", Short: "Create a preview database (a clone of the project by default)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mode != "" && mode != "empty" && mode != "clone" {
				return usageError("--mode must be empty or clone")
			}
			if err := validTTL(ttl, true); err != nil {
				return err
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			pv, job, err := c.CreatePreview(a.ctx, p.ID, apiclient.CreatePreviewRequest{Name: name, Mode: mode, TTLHours: ttl})
			if err != nil {
				return op("create preview", err)
			}
			if job == nil {
				job = &apiclient.Job{} // nothing to wait for
			}
			var waitErr error
			if w.wait {
				if job, waitErr = a.waitJob(c, job, w.timeout, "creating preview "+pv.Name); job != nil {
					// Show the preview's final state from the list.
					if list, err := c.ListPreviews(a.ctx, p.ID); err == nil {
						for i := range list {
							if list[i].ID == pv.ID {
								pv = &list[i]
							}
						}
					}
				}
			}
			conn, err := c.PreviewConnections(a.ctx, pv.ID)
			if err != nil {
				if waitErr != nil {
					return waitErr
				}
				return op("read the preview's connection URLs", err)
			}
			if a.json {
				if err := printJSON(a.out, map[string]any{"preview": pv, "connections": conn, "job": job}); err != nil {
					return err
				}
				return waitErr
			}
			fields(a.out, [][2]string{
				{"preview_id", pv.ID}, {"name", pv.Name}, {"mode", pv.Mode}, {"state", pv.State},
				{"ttl_expires_at", ts(pv.TTLExpiresAt)}, {"job_id", job.ID}, {"job_state", job.State},
				{"direct_url", a.shownURL(conn.DirectURL)}, {"pooled_url", a.shownURL(conn.PooledURL)},
			})
			if !w.wait && waitErr == nil {
				a.note("The preview is being created; wait for it with capydb jobs get --job-id %s --wait", job.ID)
			}
			return waitErr
		}}
	f := cmd.Flags()
	f.StringVar(&mode, "mode", "", "clone (default: a copy of the project) or empty")
	f.StringVar(&name, "name", "", "preview name (default: generated)")
	f.IntVar(&ttl, "ttl-hours", 0, "hours until it is deleted, 1-168 (0 = the server's default, 24)")
	addWaitFlags(cmd, &w, false, 30*time.Minute)
	return cmd
}

// previewRef is the preview named by a positional argument or --preview.
func previewRef(args []string, flag string) (string, error) {
	if len(args) == 1 && flag != "" && args[0] != flag {
		return "", usageError("name the preview once: as an argument or with --preview")
	}
	if len(args) == 1 {
		return args[0], nil
	}
	if flag == "" {
		return "", usageError("name the preview with --preview <id|name>")
	}
	return flag, nil
}

func previewJobCmd(use, short, action string, do func(c *apiclient.Client, a *app, id string) (*apiclient.Job, error)) *cobra.Command {
	var ref string
	var w waitOpts
	cmd := &cobra.Command{Use: use + " [preview]", Short: short, Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := previewRef(args, ref)
			if err != nil {
				return err
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			pv, err := a.resolvePreview(c, p.ID, r)
			if err != nil {
				return err
			}
			job, err := do(c, a, pv.ID)
			if err != nil {
				return op(action+" preview", err)
			}
			return a.finishJob(c, job, w, action+" preview "+pv.Name)
		}}
	cmd.Flags().StringVar(&ref, "preview", "", "preview id or name")
	addWaitFlags(cmd, &w, false, 30*time.Minute)
	return cmd
}

func previewResetCmd() *cobra.Command {
	return previewJobCmd("reset", "Reset a preview to a fresh copy (same URLs and expiry)", "reset",
		func(c *apiclient.Client, a *app, id string) (*apiclient.Job, error) { return c.ResetPreview(a.ctx, id) })
}

func previewDeleteCmd() *cobra.Command {
	return previewJobCmd("delete", "Delete a preview", "delete",
		func(c *apiclient.Client, a *app, id string) (*apiclient.Job, error) {
			return c.DeletePreview(a.ctx, id)
		})
}

func previewExtendCmd() *cobra.Command {
	var ttl int
	var ref string
	cmd := &cobra.Command{Use: "extend [preview]", Short: "Set a preview's expiry to now + --ttl-hours", Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := previewRef(args, ref)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("ttl-hours") {
				return usageError("--ttl-hours is required")
			}
			if err := validTTL(ttl, false); err != nil {
				return err
			}
			a, c, err := clientCmd(cmd, true, false)
			if err != nil {
				return err
			}
			id, err := a.previewID(c, r)
			if err != nil {
				return err
			}
			pv, err := c.ExtendPreview(a.ctx, id, ttl)
			if err != nil {
				return op("extend preview", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"preview": pv})
			}
			fmt.Fprintf(a.out, "Preview %s now expires at %s\n", pv.Name, ts(pv.TTLExpiresAt))
			return nil
		}}
	cmd.Flags().IntVar(&ttl, "ttl-hours", 0, "hours from now, 1-168 (required)")
	cmd.Flags().StringVar(&ref, "preview", "", "preview id or name")
	return cmd
}
