package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addBackupCommands) }

func addBackupCommands(root *cobra.Command) {
	bk := group("backups", "Backups of the project: list, take one, daily schedule", "backup")
	sched := group("schedule", "The project's daily backup schedule")
	sched.AddCommand(backupScheduleGetCmd(), backupScheduleSetCmd(), backupScheduleDisableCmd())
	bk.AddCommand(backupsListCmd(), backupsCreateCmd(), sched)
	root.AddCommand(bk)
}

// clientCmd is the common start of a command that calls the API: the app and
// an authenticated client (see app.client for the two flags).
func clientCmd(cmd *cobra.Command, projectScoped, login bool) (*app, *apiclient.Client, error) {
	a, err := newApp(cmd)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.client(projectScoped, login)
	if err != nil {
		return nil, nil, err
	}
	return a, c, nil
}

// projectCmd is the common start of a project-scoped command: the app, an
// authenticated client and the resolved project (--project or the link).
func projectCmd(cmd *cobra.Command) (*app, *apiclient.Client, *apiclient.Project, error) {
	a, c, err := clientCmd(cmd, true, false)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := a.resolveProject(c, a.project, true)
	if err != nil {
		return nil, nil, nil, err
	}
	return a, c, p, nil
}

// projectFetch resolves the command's project and reads something of it with
// fetch; a failed read is reported as op(what).
func projectFetch[T any](cmd *cobra.Command, what string, fetch func(*apiclient.Client, context.Context, string) (T, error)) (*app, *apiclient.Client, *apiclient.Project, T, error) {
	var zero T
	a, c, p, err := projectCmd(cmd)
	if err != nil {
		return nil, nil, nil, zero, err
	}
	v, err := fetch(c, a.ctx, p.ID)
	if err != nil {
		return nil, nil, nil, zero, op(what, err)
	}
	return a, c, p, v, nil
}

func backupsListCmd() *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List the project's backups, newest first", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, _, _, list, err := projectFetch(cmd, "list backups", (*apiclient.Client).ListBackups)
			if err != nil {
				return err
			}
			return printList(a, "backups", list, []string{"ID", "LABEL", "STATE", "VERIFY", "SIZE", "CREATED_AT", "BACKUP_KEY"}, func(b apiclient.Backup) []string {
				state := b.State
				if b.State == "expired" {
					state = "expired (not restorable)"
				}
				size := ""
				if b.SizeBytes > 0 {
					size = humanBytes(b.SizeBytes)
				}
				return []string{b.ID, strp(b.Label), state, b.VerificationState, size, ts(b.CreatedAt), b.BackupKey}
			})
		}}
}

func backupsCreateCmd() *cobra.Command {
	var label string
	var w waitOpts
	cmd := &cobra.Command{Use: "create", Short: "Take a backup now (a verified pg_dump archive)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len([]rune(label)) > 120 {
				return usageError("--label must be at most 120 characters")
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			job, err := c.CreateBackup(a.ctx, p.ID, label)
			if err != nil {
				return op("create backup", err)
			}
			final, err := a.finishJobResult(c, job, w, "backup of "+p.Name)
			if err != nil || !w.wait || a.json { // JSON: the job, whose result holds backup_key
				return err
			}
			if key := jobResultString(final, "backup_key"); key != "" {
				fields(a.out, [][2]string{{"backup_key", key}})
				a.note("Restore it into a new preview with: capydb restore --project %s --backup-key %s", p.ID, key)
			} else {
				a.note("The backup is listed by capydb backups list (BACKUP_KEY column)")
			}
			return nil
		}}
	cmd.Flags().StringVar(&label, "label", "", "label for the backup (at most 120 characters)")
	addWaitFlags(cmd, &w, false, 30*time.Minute)
	return cmd
}

func (a *app) printSchedule(s *apiclient.ScheduledBackup) {
	if s == nil {
		fmt.Fprintln(a.out, "No backup schedule (set one with capydb backups schedule set --hour H --minute M)")
		return
	}
	fields(a.out, [][2]string{
		{"schedule_id", s.ID}, {"active", yesNo(s.IsActive)},
		{"time_utc", fmt.Sprintf("%02d:%02d", s.CronHour, s.CronMinute)},
		{"retention_days", strconv.Itoa(s.RetentionDays)}, {"label", s.Label},
		{"last_run_at", tsp(s.LastRunAt)}, {"last_job_id", strp(s.LastJobID)},
	})
}

func backupScheduleGetCmd() *cobra.Command {
	return &cobra.Command{Use: "get", Short: "Show the backup schedule", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, _, _, list, err := projectFetch(cmd, "read the backup schedule", (*apiclient.Client).ListScheduledBackups)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string]any{"scheduled_backups": list})
			}
			if len(list) == 0 {
				a.printSchedule(nil)
				return nil
			}
			a.printSchedule(&list[0])
			return nil
		}}
}

func backupScheduleSetCmd() *cobra.Command {
	var hour, minute, retention int
	var label string
	cmd := &cobra.Command{Use: "set", Short: "Back up every day at --hour:--minute UTC", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			if hour < 0 || hour > 23 {
				return usageError("--hour must be between 0 and 23")
			}
			if minute < 0 || minute > 59 {
				return usageError("--minute must be between 0 and 59")
			}
			if retention != 0 && (retention < 1 || retention > 365) {
				return usageError("--retention-days must be between 1 and 365 (0 = the server default, 7)")
			}
			if len([]rune(label)) > 120 {
				return usageError("--label must be at most 120 characters")
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			// The PUT is a full replacement: flags not given keep the
			// current schedule's values.
			req := apiclient.UpsertScheduledBackupRequest{CronHour: hour, CronMinute: minute, IsActive: true, Label: label, RetentionDays: retention}
			if !f.Changed("hour") || !f.Changed("minute") || !f.Changed("label") || !f.Changed("retention-days") {
				list, err := c.ListScheduledBackups(a.ctx, p.ID)
				if err != nil {
					return op("read the backup schedule", err)
				}
				if len(list) == 0 && !f.Changed("hour") {
					return usageError("--hour is required when the project has no schedule yet")
				}
				if len(list) > 0 {
					cur := list[0]
					if !f.Changed("hour") {
						req.CronHour = cur.CronHour
					}
					if !f.Changed("minute") {
						req.CronMinute = cur.CronMinute
					}
					if !f.Changed("label") {
						req.Label = cur.Label
					}
					if !f.Changed("retention-days") {
						req.RetentionDays = cur.RetentionDays
					}
				}
			}
			s, err := c.UpsertScheduledBackup(a.ctx, p.ID, req)
			if err != nil {
				return op("set the backup schedule", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"scheduled_backup": s})
			}
			a.printSchedule(s)
			return nil
		}}
	f := cmd.Flags()
	f.IntVar(&hour, "hour", 0, "UTC hour, 0-23 (required for a new schedule)")
	f.IntVar(&minute, "minute", 0, "minute, 0-59")
	f.IntVar(&retention, "retention-days", 0, "days to keep scheduled backups, 1-365 (0 = the server default, 7)")
	f.StringVar(&label, "label", "", "label of the scheduled backups")
	return cmd
}

func backupScheduleDisableCmd() *cobra.Command {
	return &cobra.Command{Use: "disable", Short: "Stop scheduled backups (the schedule is kept)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, list, err := projectFetch(cmd, "read the backup schedule", (*apiclient.Client).ListScheduledBackups)
			if err != nil {
				return err
			}
			if len(list) == 0 {
				return withCode(exitNotFound, "project %s has no backup schedule", p.Name)
			}
			cur := list[0]
			s, err := c.UpsertScheduledBackup(a.ctx, p.ID, apiclient.UpsertScheduledBackupRequest{
				CronHour: cur.CronHour, CronMinute: cur.CronMinute, IsActive: false, Label: cur.Label, RetentionDays: cur.RetentionDays})
			if err != nil {
				return op("disable the backup schedule", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"scheduled_backup": s})
			}
			a.printSchedule(s)
			return nil
		}}
}
