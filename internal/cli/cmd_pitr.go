package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { registrars = append(registrars, addPITRCommands) }

// capydb pitr status † (self-hosted addition): the project's point-in-time window.
func addPITRCommands(root *cobra.Command) {
	g := group("pitr", "Point-in-time recovery of the project (self-hosted addition)")
	g.AddCommand(&cobra.Command{Use: "status", Short: "Show the restorable window, the WAL archiver's health and the last base backup",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			st, err := c.GetPITR(a.ctx, p.ID)
			if err != nil {
				return op("read the point-in-time status", err)
			}
			if a.json {
				return printJSON(a.out, st)
			}
			if !st.Enabled {
				fmt.Fprintln(a.out, "Point-in-time recovery is not available for this project (the server runs without --pitr).")
				return nil
			}
			last := ""
			if b := st.LastBaseBackup; b != nil {
				last = fmt.Sprintf("%s (%s, stopped %s)", b.Label, b.Type, ts(b.StoppedAt))
			}
			health := "healthy"
			if !st.ArchiverHealthy {
				health = fmt.Sprintf("FAILING: %d failures, last %s at %s", st.FailedCount, st.LastFailedWAL, tsp(st.LastFailedAt))
			}
			fields(a.out, [][2]string{{"window_days", fmt.Sprint(st.WindowDays)}, {"earliest_restore_time", tsp(st.EarliestRestoreTime)},
				{"latest_archived_time", tsp(st.LatestArchivedTime)}, {"archiver", health},
				{"base_backups", fmt.Sprint(st.BaseBackups)}, {"last_base_backup", last}})
			return nil
		}})
	root.AddCommand(g)
}
