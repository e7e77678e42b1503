package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addStudioCommands) }

func addStudioCommands(root *cobra.Command) {
	root.AddCommand(sqlCmd(), tablesCmd())
}

func sqlCmd() *cobra.Command {
	var preview, file string
	var req apiclient.SQLQueryRequest
	var jsonOut bool
	cmd := &cobra.Command{Use: `sql ["<query>"]`, Short: "Run SQL on the project (or a preview) in one transaction, as its own role",
		Long: "Runs one or more statements separated by ; in one transaction and prints the last one's result.\n" +
			"An UPDATE or DELETE without WHERE and TRUNCATE are refused unless --allow-unqualified-writes is given.",
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && file != "":
				return usageError("give the query as an argument or with --file, not both")
			case len(args) == 0 && file == "":
				return usageError(`give a query: capydb sql "select 1" (or --file query.sql)`)
			case req.MaxRows < 0:
				return usageError("--max-rows must not be negative (0 = 200, at most 1000)")
			case req.ReadOnly && req.AllowUnqualifiedWrites:
				return usageError("--read-only and --allow-unqualified-writes cannot be used together")
			}
			if len(args) == 1 {
				req.Query = args[0]
			} else {
				b, err := readQueryFile(cmd.InOrStdin(), file)
				if err != nil {
					return err
				}
				req.Query = string(b)
			}
			a, c, err := clientCmd(cmd, true, false)
			if err != nil {
				return err
			}
			a.json = a.json || jsonOut
			projectID := ""
			if preview != "" {
				if a.project != "" {
					return usageError("use --project or --preview, not both")
				}
			} else {
				p, err := a.resolveProject(c, a.project, true)
				if err != nil {
					return err
				}
				projectID = p.ID
			}
			res, err := c.RunSQL(a.ctx, projectID, preview, req)
			if err != nil {
				return op("run sql", err)
			}
			if a.json {
				return printJSON(a.out, res)
			}
			printResult(a.out, res)
			fmt.Fprintf(a.out, "(%d rows, %dms)\n", res.RowCount, res.DurationMS)
			if res.Truncated {
				a.note("note: more rows exist; showing the first %d (--max-rows takes up to 1000)", len(res.Rows))
			}
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&preview, "preview", "", "a preview database id (instead of --project)")
	f.StringVar(&file, "file", "", `read the query from a file ("-" = stdin)`)
	f.IntVar(&req.MaxRows, "max-rows", 0, "rows to return (default 200, at most 1000)")
	f.BoolVar(&req.ReadOnly, "read-only", false, "run the transaction READ ONLY")
	f.BoolVar(&req.AllowUnqualifiedWrites, "allow-unqualified-writes", false, "allow UPDATE/DELETE without WHERE and TRUNCATE")
	f.BoolVar(&jsonOut, "json", false, "same as -o json")
	return cmd
}

func readQueryFile(stdin io.Reader, file string) ([]byte, error) {
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, withCode(exitUsage, "--file: %v", err)
	}
	return b, nil
}

// printResult prints rows as aligned columns in the server's order: NULL for
// null, strings as they are (line breaks shown as \n), other JSON compact.
func printResult(w io.Writer, res *apiclient.SQLQueryResult) {
	if len(res.Columns) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(res.Columns, "\t"))
	for _, raw := range res.Rows {
		var row map[string]json.RawMessage
		_ = json.Unmarshal(raw, &row)
		cells := make([]string, len(res.Columns))
		for i, col := range res.Columns {
			cells[i] = cellText(row[col])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

func cellText(v json.RawMessage) string {
	if len(v) == 0 || string(v) == "null" {
		return "NULL"
	}
	var s string
	if v[0] == '"' && json.Unmarshal(v, &s) == nil {
		q := strconv.Quote(s)
		return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(q[1 : len(q)-1])
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) == nil {
		return buf.String()
	}
	return string(v)
}

func tablesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tables", Short: "List the project's tables and views with estimated row counts", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, _, _, tables, err := projectFetch(cmd, "list tables", (*apiclient.Client).ListTables)
			if err != nil {
				return err
			}
			return printList(a, "tables", tables, []string{"SCHEMA", "TABLE", "TYPE", "EST_ROWS"}, func(t apiclient.DatabaseTable) []string {
				est := ""
				if t.EstimatedRows != nil {
					est = strconv.FormatInt(*t.EstimatedRows, 10)
				}
				return []string{t.Schema, t.Table, t.Type, est}
			})
		}}
	return cmd
}
