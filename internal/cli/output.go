package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// printJSON writes v as the one JSON document of stdout.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("while encoding the output: %w", err)
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// table prints aligned columns; empty cells show as "-".
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = dash(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

// printList prints a list command's result: {"<key>": items} with --output
// json, otherwise a table with one row per item.
func printList[T any](a *app, key string, items []T, header []string, row func(T) []string) error {
	if a.json {
		return printJSON(a.out, map[string]any{key: items})
	}
	rows := make([][]string, len(items))
	for i, it := range items {
		rows[i] = row(it)
	}
	table(a.out, header, rows)
	return nil
}

// fields prints "key: value" lines aligned.
func fields(w io.Writer, kv [][2]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, p := range kv {
		fmt.Fprintf(tw, "%s:\t%s\n", p[0], dash(p[1]))
	}
	tw.Flush()
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// ts formats a time as RFC 3339 UTC ("" for none).
func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func tsp(t *time.Time) string {
	if t == nil {
		return ""
	}
	return ts(*t)
}

func strp(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// humanBytes formats a size in binary units ("12.3 MB" style, 1024-based).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "KMGTPE"[exp])
}

// jobLabels are the friendly names of job types; unknown types are
// sentence-cased.
var jobLabels = map[string]string{
	"instance.create":            "Provisioning database",
	"project.delete":             "Deleting project",
	"project.rotate_credentials": "Rotating credentials",
	"project.expire_credential":  "Retiring old credential",
	"branch.create":              "Creating preview",
	"branch.reset":               "Resetting preview",
	"branch.delete":              "Deleting preview",
	"project.backup":             "Taking backup",
	"project.backup_delete":      "Deleting expired backup",
	"project.restore":            "Restoring backup",
	"instance.pitr_restore":      "Point-in-time restore",
	"project.import":             "Importing data",
	"project.export":             "Exporting data",
	"project.extension_enable":   "Enabling extension",
	"project.extension_disable":  "Disabling extension",
	"project.promote_preview":    "Promoting preview",
	"instance.set_readonly":      "Changing read-only mode",
	"project.apply_network":      "Applying network rules",
	"project.extension_update":   "Updating extension",
	"project.settings_update":    "Changing database settings",
	"project.pooler_update":      "Changing pooler settings",
	"project.upgrade_minor":      "Minor upgrade",
}

func jobLabel(t string) string {
	if l, ok := jobLabels[t]; ok {
		return l
	}
	s := strings.NewReplacer(".", " ", "_", " ").Replace(t)
	r := []rune(s)
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}

// elapsed formats a duration for progress lines (1m05s, 12s).
func elapsed(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	if d < time.Hour {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
