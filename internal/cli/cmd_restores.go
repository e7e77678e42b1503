package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addRestoreCommands) }

func addRestoreCommands(root *cobra.Command) {
	rp := group("restore-points", "Named backups or points in time to restore later", "restore-point")
	rp.AddCommand(restorePointsListCmd(), restorePointsCreateCmd(), restorePointsDeleteCmd())
	root.AddCommand(restoreCmd(), rp)
}

type restoreOpts struct {
	backupKey, restoreTime, restorePoint string
	targetKind, preview, previewName     string
	token                                string
	ttl                                  int
	confirmed, recreate, allowUnverified bool
	w                                    waitOpts
}

// check validates the flags locally (exit 2) and fills in the target kind.
func (o *restoreOpts) check() error {
	n := 0
	for _, s := range []string{o.backupKey, o.restoreTime, o.restorePoint} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return usageError("exactly one of --backup-key, --restore-time or --restore-point is required")
	}
	if o.restoreTime != "" {
		if _, err := time.Parse(time.RFC3339, o.restoreTime); err != nil {
			return usageError("--restore-time must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
		}
	}
	if o.targetKind == "" {
		o.targetKind = "new_preview"
		if o.preview != "" {
			o.targetKind = "preview"
		}
	}
	switch o.targetKind {
	case "new_preview", "preview", "project":
	default:
		return usageError("--target-kind must be project, preview or new_preview")
	}
	if err := validTTL(o.ttl, true); err != nil {
		return err
	}
	if o.targetKind == "preview" && o.preview == "" {
		return usageError("--target-kind preview needs --preview <id|name>")
	}
	if o.targetKind != "preview" && o.preview != "" {
		return usageError("--preview applies only to --target-kind preview")
	}
	if o.targetKind != "new_preview" && (o.previewName != "" || o.ttl != 0) {
		return usageError("--preview-name and --ttl-hours apply only to --target-kind new_preview")
	}
	return nil
}

func restoreCmd() *cobra.Command {
	var o restoreOpts
	cmd := &cobra.Command{Use: "restore", Short: "Restore a backup or a point in time into a new preview, a preview or the project", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			if o.token == "" {
				o.token = os.Getenv("CAPYDB_APPROVAL_TOKEN")
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			if o.backupKey != "" {
				if o.backupKey, err = a.resolveBackupKey(c, p.ID, o.backupKey); err != nil {
					return err
				}
			}
			if o.restorePoint != "" {
				rp, err := a.resolveRestorePoint(c, p.ID, o.restorePoint)
				if err != nil {
					return err
				}
				o.restorePoint = rp.ID
			}
			req := apiclient.CreateRestoreRequest{
				BackupKey: o.backupKey, RestoreTime: o.restoreTime, RestorePointID: o.restorePoint,
				TargetKind: o.targetKind, PreviewName: o.previewName, TTLHours: o.ttl,
				AllowUnverifiedBackup: o.allowUnverified, Recreate: o.recreate,
			}
			target := "a new preview"
			switch o.targetKind {
			case "preview":
				pv, err := a.resolvePreview(c, p.ID, o.preview)
				if err != nil {
					return err
				}
				req.PreviewID, target = pv.ID, "preview "+pv.Name
			case "project":
				if o.token == "" {
					return withCode(exitConflict, "restoring over project %s needs an approval token (--approval-token or CAPYDB_APPROVAL_TOKEN), "+
						"minted by an organization admin on the project's Backups page %s/dashboard/projects/%s/backups "+
						"or with POST /v1/projects/%s/approvals {\"action\": \"project.restore_overwrite\"}",
						p.Name, a.appURL(c.BaseURL), p.ID, p.ID)
				}
				if err := a.retypeName(p.Name, "replace all data of project "+p.Name+" with the restored copy", o.confirmed); err != nil {
					return err
				}
				req.ApprovalToken, target = o.token, "project "+p.Name
			}
			job, pitr, err := c.CreateRestore(a.ctx, p.ID, req)
			if err != nil {
				return op("restore", err)
			}
			if pitr != nil && pitr.RestoreTimeClamped {
				a.note("note: %s is after the latest restorable point; restoring %s instead",
					ts(pitr.RequestedRestoreTime), ts(pitr.RestoreTime))
			}
			if err := a.finishJob(c, job, o.w, "restore into "+target); err != nil || !o.w.wait {
				return err
			}
			a.restoredNote(c, p, o.targetKind, target, job)
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&o.backupKey, "backup-key", "", "source: a backup's backup_key, id or label (see capydb backups list)")
	f.StringVar(&o.restoreTime, "restore-time", "", "source: a point in time, RFC 3339 (needs point-in-time recovery)")
	f.StringVar(&o.restorePoint, "restore-point", "", "source: a restore point's id (rp_...) or label")
	f.StringVar(&o.targetKind, "target-kind", "", "project, preview or new_preview (default: preview with --preview, otherwise new_preview)")
	f.StringVar(&o.preview, "preview", "", "the preview to replace (id or name)")
	f.StringVar(&o.previewName, "preview-name", "", "name of the new preview (default restore-<UTC time>)")
	f.IntVar(&o.ttl, "ttl-hours", 0, "lifetime of the new preview, 1-168 (0 = 24)")
	f.BoolVar(&o.confirmed, "confirm", false, "do not ask to retype the project name (target project)")
	f.BoolVar(&o.confirmed, "confirm-project-overwrite", false, "alias of --confirm")
	_ = f.MarkHidden("confirm-project-overwrite")
	f.StringVar(&o.token, "approval-token", "", "approval token for --target-kind project (default $CAPYDB_APPROVAL_TOKEN)")
	f.BoolVar(&o.recreate, "recreate", false, "compatibility flag; restores always replace the target")
	f.BoolVar(&o.allowUnverified, "allow-unverified", false, "restore a backup that has not been verified")
	addWaitFlags(cmd, &o.w, false, 30*time.Minute)
	return cmd
}

// restoredNote tells a person, after a restore finished, what is now true
// and how to reach it (stderr: stdout carries the job).
func (a *app) restoredNote(c *apiclient.Client, p *apiclient.Project, kind, target string, job *apiclient.Job) {
	switch kind {
	case "new_preview":
		id := ""
		if job != nil && job.PreviewDatabaseID != nil {
			id = *job.PreviewDatabaseID
		}
		if id == "" {
			a.note("Restored into a new preview; see capydb preview list")
			return
		}
		a.note("Restored into new preview %s. Connect with: capydb psql --project %s --preview %s (URL: capydb connection-string --preview %s)", id, p.ID, id, id)
	case "preview":
		a.note("Restored into %s; its URLs and credentials are unchanged", target)
	default:
		a.note("Project %s now holds the restored data; its URLs and credentials are unchanged. A backup of the previous contents (kind pre_restore) is in capydb backups list", p.Name)
	}
}

func restorePointsListCmd() *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List the project's restore points", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			list, days, err := c.ListRestorePoints(a.ctx, p.ID)
			if err != nil {
				return op("list restore points", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"restore_points": list, "pitr_window_days": days})
			}
			rows := make([][]string, len(list))
			for i, r := range list {
				anchor := strp(r.BackupKey)
				if r.Kind == "pitr" {
					anchor = tsp(r.PITRTime)
				}
				rows[i] = []string{r.ID, r.Label, r.Kind, anchor, r.State, ts(r.CreatedAt)}
			}
			table(a.out, []string{"ID", "LABEL", "KIND", "ANCHOR", "STATE", "CREATED"}, rows)
			return nil
		}}
}

func restorePointsCreateCmd() *cobra.Command {
	var req apiclient.CreateRestorePointRequest
	cmd := &cobra.Command{Use: "create", Short: "Name a backup or a point in time to restore later", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n := len([]rune(req.Label)); n < 1 || n > 120 {
				return usageError("--label is required (1-120 characters)")
			}
			switch req.Kind {
			case "", "backup", "pitr", "snapshot":
			default:
				return usageError("--kind must be backup or pitr")
			}
			if req.Kind == "backup" && req.BackupKey == "" {
				return usageError("--kind backup needs --backup-key")
			}
			if req.PITRTime != "" {
				if _, err := time.Parse(time.RFC3339, req.PITRTime); err != nil {
					return usageError("--pitr-time must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
				}
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			if req.BackupKey != "" {
				if req.BackupKey, err = a.resolveBackupKey(c, p.ID, req.BackupKey); err != nil {
					return err
				}
			}
			rp, err := c.CreateRestorePoint(a.ctx, p.ID, req)
			if err != nil {
				return op("create restore point", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"restore_point": rp})
			}
			fields(a.out, [][2]string{{"restore_point_id", rp.ID}, {"label", rp.Label}, {"kind", rp.Kind},
				{"backup_key", strp(rp.BackupKey)}, {"pitr_time", tsp(rp.PITRTime)}, {"state", rp.State}})
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&req.Label, "label", "", "name of the restore point (required)")
	f.StringVar(&req.Kind, "kind", "", "backup or pitr (default: backup with --backup-key, otherwise pitr)")
	f.StringVar(&req.BackupKey, "backup-key", "", "the backup to name: its backup_key, id or label (kind backup)")
	f.StringVar(&req.PITRTime, "pitr-time", "", "the point in time, RFC 3339 (kind pitr; default now)")
	f.StringVar(&req.Note, "note", "", "free-text note")
	return cmd
}

func restorePointsDeleteCmd() *cobra.Command {
	var id string
	cmd := &cobra.Command{Use: "delete", Short: "Delete a restore point (its backup is kept)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return usageError("--id is required")
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			rp, err := a.resolveRestorePoint(c, p.ID, id)
			if err != nil {
				return err
			}
			id = rp.ID
			if err := c.DeleteRestorePoint(a.ctx, p.ID, id); err != nil {
				return op("delete restore point", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"deleted": true, "restore_point_id": id})
			}
			fmt.Fprintf(a.out, "Deleted restore point %s\n", id)
			return nil
		}}
	cmd.Flags().StringVar(&id, "id", "", "the restore point's id or label (required)")
	return cmd
}
