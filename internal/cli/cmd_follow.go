package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/capydb/capydb/internal/wire"
)

// Follow imports (CLI.md: import --follow, follow-status, cutover, follow-abort).

func importFollowStatusCmd() *cobra.Command {
	var w waitOpts
	cmd := &cobra.Command{Use: "follow-status", Short: "Report a follow import's stream state and lag", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			job, err := c.ImportFollowStatus(a.ctx, p.ID)
			if err != nil {
				return op("follow status", err)
			}
			if !w.wait {
				return a.printJob(job)
			}
			final, err := a.waitJob(c, job, w.timeout, "follow status of "+p.Name)
			if err != nil {
				_ = a.printJob(final)
				return err
			}
			var st wire.ImportFollowStatus
			if len(final.Result) > 0 {
				if err := json.Unmarshal(final.Result, &st); err != nil {
					return fmt.Errorf("the server returned an unreadable status: %v", err)
				}
			}
			if a.json {
				return printJSON(a.out, map[string]any{"job": final, "result": final.Result})
			}
			state := st.UnitActive
			switch {
			case state == "" && st.Sentinel == nil:
				state = "no follow import in progress"
			case state == "":
				state = "stopped"
			}
			lag := "unknown"
			if st.LagBytes != nil {
				lag = humanBytes(*st.LagBytes)
			}
			var tables []string
			for _, t := range st.Tables {
				tables = append(tables, t.Table+"="+t.State)
			}
			fields(a.out, [][2]string{{"stream", state}, {"result", st.Result}, {"lag", lag}, {"tables", strings.Join(tables, ", ")}})
			return nil
		}}
	addWaitFlags(cmd, &w, false, 5*time.Minute)
	return cmd
}

func importCutoverCmd() *cobra.Command {
	var confirmed bool
	var w waitOpts
	cmd := &cobra.Command{Use: "cutover", Short: "End a follow import: wait for the stream, bring sequences forward, drop the slot", Args: exactArgs(0),
		Long: "Stop the writers on the source first: the cutover waits until everything the source has written\n" +
			"has reached the project, then ends the stream and returns the project to ready.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			if err := a.retypeName(p.Name, "cut project "+p.Name+" over from its follow source (stop the source's writers first)", confirmed); err != nil {
				return err
			}
			job, err := c.CutoverImportFollow(a.ctx, p.ID)
			if err != nil {
				return op("cutover", err)
			}
			if err := a.finishJob(c, job, w, "cutover of "+p.Name); err != nil || !w.wait {
				return err
			}
			a.note("Project %s no longer follows its source; point your application at it", p.Name)
			return nil
		}}
	cmd.Flags().BoolVar(&confirmed, "confirm", false, "do not ask to retype the project name")
	addWaitFlags(cmd, &w, false, 30*time.Minute)
	return cmd
}

func importFollowAbortCmd() *cobra.Command {
	var w waitOpts
	cmd := &cobra.Command{Use: "follow-abort", Short: "Stop a follow import and remove its slot and publication from the source", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			job, err := c.AbortImportFollow(a.ctx, p.ID)
			if err != nil {
				return op("follow abort", err)
			}
			return a.finishJob(c, job, w, "follow abort of "+p.Name)
		}}
	addWaitFlags(cmd, &w, false, 10*time.Minute)
	return cmd
}

// startFollow is import --follow.
func (a *app) startFollow(c *apiclient.Client, p *apiclient.Project, sourceURL string, w waitOpts) error {
	job, err := c.StartImportFollow(a.ctx, p.ID, sourceURL)
	if err != nil {
		return op("start follow import", err)
	}
	if err := a.finishJob(c, job, w, "follow import into "+p.Name); err != nil || !w.wait {
		return err
	}
	a.note("Project %s now follows the source; check it with `capydb import follow-status --wait`, then stop the source's writers and run `capydb import cutover`", p.Name)
	return nil
}
