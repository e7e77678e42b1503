package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addObserveCommands) }

func addObserveCommands(root *cobra.Command) {
	alerts := group("alerts", "Usage alerts (storage, connections)", "alert")
	alerts.AddCommand(alertsListCmd(), alertsAckCmd())
	root.AddCommand(metricsCmd(), logsCmd(), alerts)
}

func metricsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "metrics", Aliases: []string{"observability"}, Short: "Connections, size, active and slow queries now",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			o, err := c.GetObservability(a.ctx, p.ID)
			if err != nil {
				return op("read metrics", err)
			}
			if a.json {
				return printJSON(a.out, o)
			}
			fields(a.out, [][2]string{
				{"connections", fmt.Sprintf("%d of %d (%.1f%%)", o.ConnectionCount, o.ConnectionLimit, o.ConnectionUsagePercent)},
				{"storage", fmt.Sprintf("%s of %s (%.1f%%)", humanBytes(o.DatabaseSizeBytes), humanBytes(o.StorageLimitBytes), o.StorageUsagePercent)},
				{"alerts", strings.Join(o.Alerts, ", ")},
			})
			fmt.Fprintln(a.out, "\nActive queries:")
			rows := make([][]string, len(o.ActiveQueries))
			for i, q := range o.ActiveQueries {
				rows[i] = []string{strconv.Itoa(q.PID), q.Username, q.State, fmt.Sprintf("%dms", q.DurationMs),
					strings.Trim(strp(q.WaitEventType)+"/"+strp(q.WaitEvent), "/"), oneLine(q.Query, 60)}
			}
			table(a.out, []string{"PID", "USER", "STATE", "DURATION", "WAIT", "QUERY"}, rows)
			if !o.PgStatStatements {
				fmt.Fprintln(a.out, "\nSlow queries: pg_stat_statements is not enabled (capydb extensions enable pg_stat_statements)")
				return nil
			}
			fmt.Fprintln(a.out, "\nSlow queries (top 10 by mean time):")
			rows = make([][]string, len(o.SlowQueries))
			for i, q := range o.SlowQueries {
				rows[i] = []string{fmt.Sprintf("%.1fms", q.MeanTimeMs), strconv.FormatInt(q.Calls, 10),
					strconv.FormatInt(q.Rows, 10), fmt.Sprintf("%.0fms", q.TotalTimeMs), oneLine(q.Query, 60)}
			}
			table(a.out, []string{"MEAN", "CALLS", "ROWS", "TOTAL", "QUERY"}, rows)
			return nil
		}}
	return cmd
}

// oneLine folds whitespace and cuts a statement for a table cell.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > n {
		return string([]rune(s)[:n-1]) + "…"
	}
	return s
}

type logsFlags struct {
	hours, limit                             int
	severity, search, sqlstate, since, until string
	cursor                                   string
	follow                                   bool
}

// followInterval is how often --follow polls (CLI.md).
var followInterval = 4 * time.Second

func logsCmd() *cobra.Command {
	var f logsFlags
	cmd := &cobra.Command{Use: "logs", Short: "Tail or search the project database's server log", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			searching := f.search != "" || f.sqlstate != "" || f.since != "" || f.until != ""
			switch {
			case f.follow && searching:
				return usageError("--follow cannot be combined with --search, --sqlstate, --since or --until")
			case f.hours < 0 || f.hours > 720:
				return usageError("--hours must be between 1 and 720")
			case f.limit < 0 || f.limit > 500:
				return usageError("--limit must be between 0 and 500")
			case utf8.RuneCountInString(f.search) > 200:
				return usageError("--search takes at most 200 characters")
			}
			now := time.Now()
			since, err := logTime("--since", f.since, now)
			if err != nil {
				return err
			}
			until, err := logTime("--until", f.until, now)
			if err != nil {
				return err
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			if searching {
				res, err := c.SearchLogs(a.ctx, p.ID, apiclient.LogSearchQuery{Q: f.search, SQLState: f.sqlstate,
					Severity: f.severity, Since: since, Until: until, Cursor: f.cursor, Limit: f.limit})
				if err != nil {
					return op("search logs", explain503(err))
				}
				if a.json {
					return printJSON(a.out, map[string]any{"search": res})
				}
				a.printLogEntries(res.Entries)
				if res.Truncated {
					a.note("more entries: --cursor %s", res.NextCursor)
				}
				return nil
			}
			q := apiclient.LogsQuery{Cursor: f.cursor, Hours: f.hours, Limit: f.limit, Severity: f.severity}
			logs, err := c.GetLogs(a.ctx, p.ID, q)
			if err != nil {
				return op("read logs", err)
			}
			if !f.follow {
				if a.json {
					return printJSON(a.out, map[string]any{"logs": logs})
				}
				a.printLogEntries(logs.Entries)
				return nil
			}
			for {
				if a.json {
					for _, e := range logs.Entries {
						b, _ := json.Marshal(e)
						fmt.Fprintln(a.out, string(b))
					}
				} else {
					a.printLogEntries(logs.Entries)
				}
				if logs.NextCursor != "" {
					q.Cursor = logs.NextCursor
				}
				select {
				case <-a.ctx.Done():
					return nil
				case <-time.After(followInterval):
				}
				if logs, err = c.GetLogs(a.ctx, p.ID, q); err != nil {
					if a.ctx.Err() != nil {
						return nil
					}
					return op("read logs", err)
				}
			}
		}}
	fl := cmd.Flags()
	fl.IntVar(&f.hours, "hours", 0, "the trailing window in hours, 1-720 (default 1)")
	fl.IntVar(&f.limit, "limit", 0, "how many lines, up to 500 (default 200)")
	fl.StringVar(&f.severity, "severity", "", "comma-separated severities (error,fatal,...)")
	fl.BoolVarP(&f.follow, "follow", "f", false, "keep polling for new lines every 4 s")
	fl.StringVar(&f.search, "search", "", "search: case-insensitive substring (at most 200 characters)")
	fl.StringVar(&f.sqlstate, "sqlstate", "", "search: comma-separated SQLSTATE codes or classes (23505,42)")
	fl.StringVar(&f.since, "since", "", "search: from (RFC 3339, or 90m/12h/7d ago)")
	fl.StringVar(&f.until, "until", "", "search: until (RFC 3339, or 90m/12h/7d ago)")
	fl.StringVar(&f.cursor, "cursor", "", "continue after (tail) or before (search) this cursor")
	return cmd
}

// logTime turns an RFC 3339 time or a relative "90m"/"12h"/"7d" (ago)
// into RFC 3339 ("" stays "").
func logTime(flag, v string, now time.Time) (string, error) {
	if v == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC().Format(time.RFC3339), nil
	}
	unit := map[byte]time.Duration{'m': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour}[v[len(v)-1]]
	n, err := strconv.Atoi(v[:len(v)-1])
	if unit == 0 || err != nil || n <= 0 {
		return "", usageError(flag + " takes an RFC 3339 time or a duration such as 90m, 12h or 7d")
	}
	return now.Add(-time.Duration(n) * unit).UTC().Format(time.RFC3339), nil
}

// explain503 says what a 503 of the search route means.
func explain503(err error) error {
	var ae *apiclient.Error
	if errors.As(err, &ae) && ae.Status == 503 {
		return fmt.Errorf("%w (the operator has not enabled the searchable log archive: capydb server --log-search; "+
			"`capydb logs` without search flags still tails the recent lines)", err)
	}
	return err
}

func (a *app) printLogEntries(es []apiclient.ProjectLogEntry) {
	for _, e := range es {
		code := ""
		if e.SQLState != nil && *e.SQLState != "00000" {
			code = " [" + *e.SQLState + "]"
		}
		fmt.Fprintf(a.out, "%s %s%s %s\n", e.Timestamp.UTC().Format(time.RFC3339Nano), strings.ToUpper(e.Severity), code, e.Message)
	}
}

func alertsListCmd() *cobra.Command {
	return &cobra.Command{Use: "list", Short: "Open alerts and those resolved in the last 30 days", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			as, err := c.ListAlerts(a.ctx, p.ID)
			if err != nil {
				return op("list alerts", err)
			}
			return printList(a, "alerts", as, []string{"ID", "KIND", "SEVERITY", "OBSERVED", "LIMIT", "TRIGGERED_AT", "RESOLVED_AT", "ACKNOWLEDGED_AT"},
				func(al apiclient.ProjectAlert) []string {
					obs, lim := strconv.FormatInt(al.ObservedValue, 10), strconv.FormatInt(al.LimitValue, 10)
					if al.Kind == "storage" {
						obs, lim = humanBytes(al.ObservedValue), humanBytes(al.LimitValue)
					}
					return []string{al.ID, al.Kind, al.Severity, obs, lim, ts(al.TriggeredAt), tsp(al.ResolvedAt), tsp(al.AcknowledgedAt)}
				})
		}}
}

func alertsAckCmd() *cobra.Command {
	return &cobra.Command{Use: "ack <alert-id>", Aliases: []string{"acknowledge"}, Short: "Acknowledge an alert (it stays open)",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			al, err := c.AcknowledgeAlert(a.ctx, p.ID, args[0])
			if err != nil {
				return op("acknowledge alert", err)
			}
			if a.json {
				return printJSON(a.out, map[string]any{"acknowledged": true, "alert_id": al.ID})
			}
			fmt.Fprintf(a.out, "Acknowledged %s (%s %s, acknowledged at %s)\n", al.ID, al.Kind, al.Severity, tsp(al.AcknowledgedAt))
			return nil
		}}
}
