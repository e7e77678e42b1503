package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addExportCommands) }

// The spec gives `export` and `export download` an `--output <file>` flag,
// which clashes with the global `-o/--output text|json`. On those two
// commands `--output` is the file and `-o` stays the output format (it is
// bound to a local flag named --output-format there), so both
// `capydb export --output db.dump -o json` and the global form keep working.

func addExportCommands(root *cobra.Command) {
	ex := exportCmd()
	ex.AddCommand(exportListCmd(), exportDownloadCmd())
	// The nearest PersistentPreRunE wins in cobra: this one replaces the
	// root's --output check for export and its subcommands.
	ex.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		name := "output"
		if cmd.Flags().Lookup("output-format") != nil {
			name = "output-format"
		}
		if o, _ := cmd.Flags().GetString(name); o != "text" && o != "json" {
			return usageError(fmt.Sprintf("-o must be text or json, not %q", o))
		}
		return nil
	}
	root.AddCommand(ex)
}

// addFileOutputFlags defines --output <file> and re-binds -o to the format.
func addFileOutputFlags(cmd *cobra.Command, file *string, help string) {
	cmd.Flags().StringVar(file, "output", "", help)
	cmd.Flags().StringP("output-format", "o", "text", "output format: text or json (the global -o; --output names the file on this command)")
}

// fileApp is newApp for commands whose --output is a file.
func fileApp(cmd *cobra.Command) (*app, *apiclient.Client, *apiclient.Project, error) {
	a, c, p, err := projectCmd(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	format, _ := cmd.Flags().GetString("output-format")
	a.json = format == "json"
	return a, c, p, nil
}

func exportCmd() *cobra.Command {
	var file string
	var noDownload bool
	var w waitOpts
	cmd := &cobra.Command{Use: "export", Short: "Export the project as a pg_dump archive and download it", Args: exactArgs(0),
		Long: "Queues an export (a pg_dump custom-format archive, downloadable for 7 days), waits for it and\n" +
			"downloads it to --output (default <project>-<UTC timestamp>.dump). With --no-download it only\n" +
			"queues the export (add --wait to wait for it); fetch it later with capydb export download.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if noDownload && cmd.Flags().Changed("output") {
				return usageError("--output and --no-download exclude each other")
			}
			a, c, p, err := fileApp(cmd)
			if err != nil {
				return err
			}
			id, job, err := c.CreateExport(a.ctx, p.ID)
			if err != nil {
				return op("create export", err)
			}
			if noDownload {
				var werr error
				if w.wait {
					job, werr = a.waitJob(c, job, w.timeout, "export of "+p.Name)
				}
				if a.json {
					if err := printJSON(a.out, map[string]any{"export_id": id, "job": job}); err != nil {
						return err
					}
					return werr
				}
				fields(a.out, [][2]string{{"export_id", id}, {"job_id", jobID(job)}, {"job_state", jobState(job)}})
				if werr == nil {
					a.note("Download it with capydb export download --export %s", id)
				}
				return werr
			}
			if _, err := a.waitJob(c, job, w.timeout, "export of "+p.Name); err != nil {
				return err
			}
			if file == "" {
				file = fmt.Sprintf("%s-%s.dump", p.Slug, time.Now().UTC().Format("20060102T150405Z"))
			}
			return a.downloadExport(c, p, id, file)
		}}
	addFileOutputFlags(cmd, &file, "file to write (default <project>-<UTC timestamp>.dump)")
	cmd.Flags().BoolVar(&noDownload, "no-download", false, "only queue the export; print its id and job")
	addWaitFlags(cmd, &w, false, 30*time.Minute)
	cmd.Flags().Lookup("wait").Usage = "with --no-download: wait for the export (without it, export always waits)"
	return cmd
}

func jobID(j *apiclient.Job) string {
	if j == nil {
		return ""
	}
	return j.ID
}

func jobState(j *apiclient.Job) string {
	if j == nil {
		return ""
	}
	return j.State
}

// downloadExport fetches a finished export into file: through a temporary
// file next to it, renamed into place only when the size matches the
// export's record, so a broken download never leaves a truncated dump.
func (a *app) downloadExport(c *apiclient.Client, p *apiclient.Project, exportID, file string) error {
	dl, err := c.ExportDownloadURL(a.ctx, p.ID, exportID)
	if err != nil {
		return op("get the export's download URL", err)
	}
	var want int64 = -1
	if list, err := c.ListExports(a.ctx, p.ID); err == nil {
		for _, e := range list {
			if e.ID == exportID && e.SizeBytes > 0 {
				want = e.SizeBytes
			}
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".part-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %v", file, err)
	}
	defer os.Remove(tmp.Name()) // after the rename this removes nothing
	t, done, err := a.transfer("downloading " + exportID)
	if err != nil {
		tmp.Close()
		return err
	}
	n, err := t.Download(a.ctx, dl.DownloadURL, tmp)
	done()
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return op("download export "+exportID, err)
	}
	if want >= 0 && n != want {
		return withCode(exitError, "download export %s: got %d bytes, the export has %d", exportID, n, want)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("cannot write %s: %v", file, err)
	}
	if a.json {
		return printJSON(a.out, map[string]any{"export_id": exportID, "file": file})
	}
	fmt.Fprintf(a.out, "Wrote %s (%s) to %s\n", exportID, humanBytes(n), file)
	return nil
}

func exportListCmd() *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List the project's exports, newest first", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, _, _, list, err := projectFetch(cmd, "list exports", (*apiclient.Client).ListExports)
			if err != nil {
				return err
			}
			return printList(a, "exports", list, []string{"ID", "STATE", "SIZE", "CREATED_AT", "EXPIRES_AT"}, func(e apiclient.ProjectExport) []string {
				size := ""
				if e.SizeBytes > 0 {
					size = humanBytes(e.SizeBytes)
				}
				return []string{e.ID, e.State, size, ts(e.CreatedAt), ts(e.ExpiresAt)}
			})
		}}
}

func exportDownloadCmd() *cobra.Command {
	var id, file string
	cmd := &cobra.Command{Use: "download", Short: "Download a finished export (within its 7-day window)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return usageError("--export is required")
			}
			a, c, p, err := fileApp(cmd)
			if err != nil {
				return err
			}
			if file == "" {
				file = fmt.Sprintf("%s-%s.dump", p.Slug, id)
			}
			return a.downloadExport(c, p, id, file)
		}}
	cmd.Flags().StringVar(&id, "export", "", "the export's id (exp_..., required)")
	addFileOutputFlags(cmd, &file, "file to write (default <project>-<export id>.dump)")
	return cmd
}
