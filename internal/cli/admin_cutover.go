package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/server"
	"github.com/capydb/capydb/internal/store"
)

// adminCutoverCmd is `capydb admin cutover list|ack|reject|execute`
// (PRODUCT.md §22): operator review and execution of cutover requests,
// against the control database, never through the tenant API.
func adminCutoverCmd() *cobra.Command {
	var dataDir, databaseURL, operator string
	var asJSON bool
	cmd := &cobra.Command{Use: "cutover", Short: "Review and execute tenants' cutover requests (preview promotion)"}
	pf := cmd.PersistentFlags()
	pf.StringVar(&dataDir, "data-dir", server.DefaultDataDir(), "data directory of the server")
	pf.StringVar(&databaseURL, "database-url", "", "control database URL")
	pf.StringVar(&operator, "operator", defaultOperator(), "operator name recorded as ack_by_user_id and in the audit log")
	pf.BoolVar(&asJSON, "json", false, "print JSON")

	open := func(cmd *cobra.Command) (*store.Store, context.Context, func(), error) {
		if _, err := applyEnv(cmd, "data-dir", "database-url"); err != nil {
			return nil, nil, nil, err
		}
		dsn, err := server.ControlDSN(databaseURL, dataDir)
		if err != nil {
			return nil, nil, nil, err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
		st, err := store.Open(ctx, dsn, 2)
		if err != nil {
			cancel()
			return nil, nil, nil, err
		}
		return st, ctx, func() { st.Close(); cancel() }, nil
	}
	show := func(cmd *cobra.Command, c *store.CutoverRequest, extra [][2]string) error {
		if asJSON {
			return printJSON(cmd.OutOrStdout(), map[string]any{"cutover_request": c})
		}
		kv := [][2]string{{"id", c.ID}, {"project_id", c.ProjectID}, {"preview_id", c.PreviewDatabaseID}, {"status", c.Status},
			{"external_ticket_ref", strp(c.ExternalTicketRef)}}
		fields(cmd.OutOrStdout(), append(kv, extra...))
		return nil
	}

	var project, status string
	list := &cobra.Command{Use: "list", Short: "List cutover requests (all projects unless --project)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, ctx, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			l, err := store.ListCutoverRequests(ctx, st.Pool, project, status)
			if err != nil {
				return err
			}
			if asJSON {
				if l == nil {
					l = []*store.CutoverRequest{}
				}
				return printJSON(cmd.OutOrStdout(), map[string]any{"cutover_requests": l})
			}
			for _, c := range l {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Status, c.ProjectID, c.PreviewDatabaseID,
					strp(c.ExternalTicketRef), c.CreatedAt.UTC().Format(time.RFC3339))
			}
			return nil
		}}
	list.Flags().StringVar(&project, "project", "", "only this project's requests (id)")
	list.Flags().StringVar(&status, "status", "", "only requests in this status (open, acked, rejected, completed)")

	var ticket, note string
	ack := &cobra.Command{Use: "ack <request-id>", Aliases: []string{"approve"}, Short: "Acknowledge an open request", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, ctx, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			c, err := lifecycle.AckCutover(ctx, st, args[0], lifecycle.OperatorReview{Operator: operator, Note: note, ExternalTicketRef: ticket})
			if err != nil {
				return adminError(err)
			}
			return show(cmd, c, nil)
		}}
	ack.Flags().StringVar(&ticket, "ticket", "", "external ticket reference (required before execution unless the tenant gave one)")
	ack.Flags().StringVar(&note, "note", "", "operator note")

	var reason string
	reject := &cobra.Command{Use: "reject <request-id>", Short: "Reject an open or acknowledged request", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if reason == "" {
				return usageError("--reason is required")
			}
			st, ctx, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			c, err := lifecycle.RejectCutover(ctx, st, args[0], lifecycle.OperatorReview{Operator: operator, Reason: reason, Note: note})
			if err != nil {
				return adminError(err)
			}
			return show(cmd, c, [][2]string{{"rejected_reason", reason}})
		}}
	reject.Flags().StringVar(&reason, "reason", "", "why (shown to the tenant)")
	reject.Flags().StringVar(&note, "note", "", "operator note")

	execute := &cobra.Command{Use: "execute <request-id>", Short: "Take a verified pre_cutover backup, then promote the preview (queues project.promote_preview)",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, ctx, done, err := open(cmd)
			if err != nil {
				return err
			}
			defer done()
			c, job, err := lifecycle.ExecuteCutover(ctx, st, args[0], operator)
			if err != nil {
				return adminError(err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"cutover_request": c, "job_id": job.ID})
			}
			return show(cmd, c, [][2]string{{"promote_job_id", job.ID}, {"pre_cutover_backup_id", strp(c.PreCutoverBackupID)}})
		}}
	cmd.AddCommand(list, ack, reject, execute)
	return cmd
}

func defaultOperator() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "operator"
}

// adminError gives a domain error of the operator tooling its exit code.
func adminError(err error) error {
	switch domainerr.KindOf(err) {
	case domainerr.NotFound:
		return &codedError{code: exitNotFound, err: err}
	case domainerr.Conflict:
		return &codedError{code: exitConflict, err: err}
	case domainerr.Invalid:
		return &codedError{code: exitUsage, err: err}
	}
	return err
}
