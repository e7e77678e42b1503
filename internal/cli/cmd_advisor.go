package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addAdvisorCommands) }

func addAdvisorCommands(root *cobra.Command) {
	adv := group("advisor", "Index advice: indexes to add, and unused or redundant indexes to drop")
	adv.AddCommand(advisorIndexesCmd(), advisorHygieneCmd())
	root.AddCommand(adv)
}

func dbLintCmd() *cobra.Command {
	var preview string
	var exitCode bool
	cmd := &cobra.Command{Use: "lint", Short: "Lint the schema: keys, foreign-key indexes, duplicate, unused and redundant indexes, bloat",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, t, label, err := schemaTarget(cmd, preview)
			if err != nil {
				return err
			}
			r, err := c.Lint(a.ctx, t)
			if err != nil {
				return op("lint", err)
			}
			warnings := 0
			for _, f := range r.Findings {
				if f.Severity == "warning" {
					warnings++
				}
			}
			if a.json {
				if err := printJSON(a.out, r); err != nil {
					return err
				}
			} else {
				if len(r.Findings) == 0 {
					fmt.Fprintf(a.out, "no findings for %s\n", label)
				} else {
					rows := make([][]string, len(r.Findings))
					for i, f := range r.Findings {
						rows[i] = []string{f.Severity, f.Rule, f.Object, f.Message, f.Fix}
					}
					table(a.out, []string{"SEVERITY", "RULE", "OBJECT", "MESSAGE", "FIX"}, rows)
				}
				for _, s := range r.Skipped {
					a.note("skipped %s", s)
				}
			}
			if exitCode && warnings > 0 {
				return withCode(exitError, "%d lint warning(s)", warnings)
			}
			return nil
		}}
	cmd.Flags().StringVar(&preview, "preview", "", "a preview database id (default: the project)")
	cmd.Flags().BoolVar(&exitCode, "exit-code", false, "exit 1 when there are warnings")
	return cmd
}

func advisorIndexesCmd() *cobra.Command {
	var minFilter, minSel int
	cmd := &cobra.Command{Use: "indexes", Aliases: []string{"advise"}, Short: "Suggest indexes from the predicates queries filtered on",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if minFilter < 0 {
				return usageError("--min-filter must not be negative")
			}
			if minSel < 0 || minSel > 100 {
				return usageError("--min-selectivity must be between 0 and 100")
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			r, err := c.IndexAdvisor(a.ctx, p.ID, minFilter, minSel)
			if err != nil {
				return op("index advisor", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"advisor": r})
			}
			if !r.Available {
				fmt.Fprintf(a.out, "index advisor unavailable: %s\n", r.Reason)
				if len(r.MissingExtensions) > 0 {
					fmt.Fprintf(a.out, "extensions to enable: %s\n", strings.Join(r.MissingExtensions, ", "))
				}
				return nil
			}
			if len(r.Suggestions) == 0 {
				fmt.Fprintf(a.out, "no suggestions (min_filter %d rows, min_selectivity %d%%)\n", r.MinFilter, r.MinSelectivity)
				return nil
			}
			rows := make([][]string, len(r.Suggestions))
			for i, s := range r.Suggestions {
				size := ""
				if s.EstimatedSizeBytes != nil {
					size = humanBytes(*s.EstimatedSizeBytes)
				}
				rows[i] = []string{s.Table, size, s.DDL}
			}
			table(a.out, []string{"TABLE", "EST_SIZE", "DDL"}, rows)
			return nil
		}}
	cmd.Flags().IntVar(&minFilter, "min-filter", 0, "rows a predicate must filter on average (server default 1000)")
	cmd.Flags().IntVar(&minSel, "min-selectivity", 0, "percent of rows it must filter (server default 30)")
	return cmd
}

func advisorHygieneCmd() *cobra.Command {
	return &cobra.Command{Use: "index-hygiene", Aliases: []string{"unused-indexes"}, Short: "Unused and redundant indexes worth dropping",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, _, _, r, err := projectFetch(cmd, "index hygiene", (*apiclient.Client).IndexHygiene)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.out, map[string]any{"hygiene": r})
			}
			if !r.Available {
				fmt.Fprintf(a.out, "index hygiene unavailable: %s\n", r.Reason)
				return nil
			}
			var rows [][]string
			for _, u := range r.UnusedIndexes {
				rows = append(rows, []string{"unused", u.Schema + "." + u.Index, humanBytes(u.SizeBytes), "", u.DropStatement})
			}
			for _, d := range r.RedundantIndexes {
				rows = append(rows, []string{"redundant", d.Schema + "." + d.Index, humanBytes(d.SizeBytes), d.CoveredBy, d.DropStatement})
			}
			if len(rows) == 0 {
				fmt.Fprintln(a.out, "no unused or redundant indexes")
				return nil
			}
			table(a.out, []string{"KIND", "INDEX", "SIZE", "COVERED_BY", "DROP"}, rows)
			fmt.Fprintf(a.out, "reclaimable: %s\n", humanBytes(r.ReclaimableBytes))
			return nil
		}}
}
