package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addJobCommands) }

func addJobCommands(root *cobra.Command) {
	jobs := group("jobs", "Asynchronous jobs (provisioning, rotation, previews, deletion)", "job")
	jobs.AddCommand(jobsGetCmd(), jobsListCmd())
	root.AddCommand(jobs)
}

func jobsGetCmd() *cobra.Command {
	var id string
	var w waitOpts
	cmd := &cobra.Command{Use: "get [job-id]", Aliases: []string{"status"}, Short: "Show a job (and wait for it with --wait)", Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if id != "" && id != args[0] {
					return usageError("name the job once: as an argument or with --job-id")
				}
				id = args[0]
			}
			if id == "" {
				return usageError("--job-id is required")
			}
			a, c, err := clientCmd(cmd, false, false)
			if err != nil {
				return err
			}
			job, err := c.GetJob(a.ctx, id)
			if err != nil {
				return op("get job", err)
			}
			if !w.wait || job.Terminal() {
				if err := a.printJob(job); err != nil {
					return err
				}
				if w.wait && job.State != "completed" {
					return withCode(exitError, "%s ended in %s: %s", jobLabel(job.Type), job.State, dash(strp(job.Error)))
				}
				return nil
			}
			return a.finishJob(c, job, w, jobLabel(job.Type))
		}}
	cmd.Flags().StringVar(&id, "job-id", "", "the job's id (job_...)")
	addWaitFlags(cmd, &w, false, 30*time.Minute)
	return cmd
}

func jobsListCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{Use: "list", Short: "List the project's jobs, newest first", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 || limit > 100 {
				return usageError("--limit must be between 1 and 100")
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			jobs, err := c.ListJobs(a.ctx, p.ID, limit)
			if err != nil {
				return op("list jobs", err)
			}
			return printList(a, "jobs", jobs, []string{"CREATED_AT", "TYPE", "STATE", "ATTEMPTS", "DURATION", "JOB_ID"}, func(j apiclient.Job) []string {
				dur := ""
				if j.StartedAt != nil && j.CompletedAt != nil {
					dur = j.CompletedAt.Sub(*j.StartedAt).Round(time.Millisecond).String()
				}
				return []string{ts(j.CreatedAt), j.Type, j.State, fmt.Sprintf("%d/%d", j.Attempts, j.MaxAttempts), dur, j.ID}
			})
		}}
	cmd.Flags().IntVar(&limit, "limit", 0, "how many jobs (default 25, max 100)")
	return cmd
}
