package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/capydb/capydb/internal/schema"
	"github.com/capydb/capydb/internal/typegen"
)

func init() { registrars = append(registrars, addSchemaCommands) }

func addSchemaCommands(root *cobra.Command) {
	sc := group("schema", "Dump the canonical schema JSON and diff it against a file or a preview")
	lint := dbLintCmd()
	lint.Hidden = true // capydb db lint is the documented name
	types := generateGroup("types")
	types.Hidden = true // capydb generate is the documented name
	sc.AddCommand(schemaDumpCmd(), schemaDiffCmd(), types, lint)
	sharedGroup(root, "db", "The project's database: checks and settings").AddCommand(dbLintCmd(), dbNewCmd("new")) // db new: cmd_ephemeral.go
	root.AddCommand(sc, generateGroup("generate"))
}

// target is the project (--project or the link) or the preview (--preview,
// a plain id passed to the API as is, CLI.md §5) a schema command reads.
func schemaTarget(cmd *cobra.Command, preview string) (*app, *apiclient.Client, apiclient.Target, string, error) {
	if preview != "" {
		a, c, err := clientCmd(cmd, true, false)
		if err != nil {
			return nil, nil, apiclient.Target{}, "", err
		}
		return a, c, apiclient.Target{PreviewID: preview}, "preview " + preview, nil
	}
	a, c, p, err := projectCmd(cmd)
	if err != nil {
		return nil, nil, apiclient.Target{}, "", err
	}
	return a, c, apiclient.Target{ProjectID: p.ID}, "project " + p.ID, nil
}

// schemaJSON is the committed form of a schema: indented, newline-terminated.
func schemaJSON(s *apiclient.DatabaseSchema) ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func schemaDumpCmd() *cobra.Command {
	var preview, out string
	cmd := &cobra.Command{Use: "dump", Short: "Print (or write with --out) the canonical schema JSON", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, c, t, label, err := schemaTarget(cmd, preview)
			if err != nil {
				return err
			}
			s, err := c.Schema(a.ctx, t)
			if err != nil {
				return op("read the schema", err)
			}
			b, err := schemaJSON(s)
			if err != nil {
				return err
			}
			if out == "" {
				_, err = a.out.Write(b)
				return err
			}
			if err := writeFileDirs(out, b); err != nil {
				return err
			}
			if a.json {
				_, err = a.out.Write(b)
				return err
			}
			fmt.Fprintf(a.out, "wrote the schema of %s to %s\n", label, out)
			return nil
		}}
	cmd.Flags().StringVar(&preview, "preview", "", "a preview database id (default: the project)")
	cmd.Flags().StringVar(&out, "out", "", "write the JSON to this file instead of stdout")
	return cmd
}

func schemaDiffCmd() *cobra.Command {
	var preview, againstFile, againstPreview string
	var exitCode bool
	cmd := &cobra.Command{Use: "diff", Short: "Structural differences from a baseline (a schema file or a preview)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (againstFile == "") == (againstPreview == "") {
				return usageError("give exactly one of --against <file> and --against-preview <id>")
			}
			var base *apiclient.DatabaseSchema
			if againstFile != "" {
				raw, err := os.ReadFile(againstFile)
				if err != nil {
					return usageError(fmt.Sprintf("--against: %v", err))
				}
				base = &apiclient.DatabaseSchema{}
				if err := json.Unmarshal(raw, base); err != nil {
					return usageError(fmt.Sprintf("--against: %s is not a schema JSON document (capydb schema dump): %v", againstFile, err))
				}
			}
			a, c, t, label, err := schemaTarget(cmd, preview)
			if err != nil {
				return err
			}
			var d *apiclient.SchemaDiff
			switch {
			case againstPreview != "" && t.PreviewID != "":
				// Both previews: the server compares them.
				if d, err = c.PreviewSchemaDiff(a.ctx, t.PreviewID, againstPreview); err != nil {
					return op("diff the schemas", err)
				}
			default:
				baseline := "file " + againstFile
				if againstPreview != "" {
					if base, err = c.Schema(a.ctx, apiclient.Target{PreviewID: againstPreview}); err != nil {
						return op("read the baseline preview's schema", err)
					}
					baseline = "preview " + againstPreview
				}
				cur, err := c.Schema(a.ctx, t)
				if err != nil {
					return op("read the schema", err)
				}
				diffs := schema.Compare(base, cur)
				d = &apiclient.SchemaDiff{Baseline: baseline, Target: label, Differences: diffs, InSync: len(diffs) == 0}
			}
			if d.Differences == nil {
				d.Differences = []apiclient.SchemaDifference{}
			}
			if a.json {
				if err := printJSON(a.out, d); err != nil {
					return err
				}
			} else if d.InSync {
				fmt.Fprintf(a.out, "%s is in sync with %s\n", d.Target, d.Baseline)
			} else {
				fmt.Fprintf(a.out, "%s differs from %s:\n", d.Target, d.Baseline)
				rows := make([][]string, len(d.Differences))
				for i, x := range d.Differences {
					rows[i] = []string{x.Change, x.ObjectType, x.Object, x.Field, x.From, x.To}
				}
				table(a.out, []string{"CHANGE", "TYPE", "OBJECT", "FIELD", "FROM", "TO"}, rows)
			}
			if exitCode && !d.InSync {
				return withCode(exitError, "%d schema difference(s)", len(d.Differences))
			}
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&againstFile, "against", "", "baseline: a file written by capydb schema dump")
	f.StringVar(&againstPreview, "against-preview", "", "baseline: a preview database id")
	f.StringVar(&preview, "preview", "", "compare this preview (default: the project)")
	f.BoolVar(&exitCode, "exit-code", false, "exit 1 when there are differences")
	return cmd
}

// generateGroup is capydb generate types|zod|drizzle|go|python.
func generateGroup(use string) *cobra.Command {
	g := group(use, "Generate application types from the database schema (on the server)")
	for _, l := range []struct{ use, lang, short string }{
		{"types", "typescript", "TypeScript types (--style capydb or supabase)"},
		{"zod", "zod", "zod schemas"},
		{"drizzle", "drizzle", "a drizzle-orm schema"},
		{"go", "go", "Go structs and column constants"},
		{"python", "python", "Python dataclasses or pydantic models (--style)"},
	} {
		g.AddCommand(generateCmd(l.use, l.lang, l.short))
	}
	return g
}

func generateCmd(use, lang, short string) *cobra.Command {
	var preview, out, style, pkg string
	var print, watch bool
	var interval time.Duration
	cmd := &cobra.Command{Use: use, Short: short, Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Enumerated values are checked here (exit 2) before any call.
			if _, err := typegen.Normalize(typegen.Options{Language: lang, Style: style, Package: pkg}); err != nil {
				var inv *typegen.InvalidError
				if errors.As(err, &inv) {
					return usageError("--style/--package: " + inv.Msg)
				}
				return err
			}
			if watch && print {
				return usageError("--watch writes a file; it cannot be combined with --print")
			}
			if interval <= 0 {
				return usageError("--watch-interval must be positive")
			}
			a, c, t, _, err := schemaTarget(cmd, preview)
			if err != nil {
				return err
			}
			last := ""
			for {
				gen, err := c.GenerateTypes(a.ctx, t, lang, style, pkg)
				if err != nil && !(watch && a.ctx.Err() != nil) {
					return op("generate "+lang, err)
				}
				if err == nil && gen.Content != last {
					last = gen.Content
					if err := a.emitTypes(gen, out, print); err != nil {
						return err
					}
				}
				if !watch {
					return nil
				}
				select {
				case <-a.ctx.Done():
					return nil // Ctrl-C ends the watch
				case <-time.After(interval):
				}
			}
		}}
	f := cmd.Flags()
	f.StringVar(&preview, "preview", "", "a preview database id (default: the project)")
	f.StringVar(&out, "out", "", "file to write (default: the suggested name, e.g. database.types.ts)")
	f.BoolVar(&print, "print", false, "print the source to stdout instead of writing a file")
	f.BoolVar(&watch, "watch", false, "regenerate whenever the schema changes (until Ctrl-C)")
	f.DurationVar(&interval, "watch-interval", 5*time.Second, "how often --watch checks the schema")
	switch lang {
	case "typescript":
		f.StringVar(&style, "style", "", "capydb (default) or supabase")
	case "python":
		f.StringVar(&style, "style", "", "dataclass (default) or pydantic")
	case "go":
		f.StringVar(&pkg, "package", "", "Go package name (default db)")
	}
	return cmd
}

func (a *app) emitTypes(gen *apiclient.GeneratedTypes, out string, print bool) error {
	if print {
		if a.json {
			return printJSON(a.out, gen)
		}
		_, err := fmt.Fprint(a.out, gen.Content)
		return err
	}
	path := out
	if path == "" {
		path = gen.Filename
	}
	if err := writeFileDirs(path, []byte(gen.Content)); err != nil {
		return err
	}
	if a.json {
		return printJSON(a.out, map[string]any{"language": gen.Language, "path": path, "style": gen.Style})
	}
	fmt.Fprintf(a.out, "wrote %s (%s)\n", path, gen.Language)
	return nil
}

// writeFileDirs writes a generated file, creating its directory.
func writeFileDirs(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("while creating the directory of %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("while writing %s: %w", path, err)
	}
	return nil
}
