package cli

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/capydb/capydb/internal/apiclient"
)

func init() { registrars = append(registrars, addImportCommands) }

func addImportCommands(root *cobra.Command) {
	im := importCmd()
	im.AddCommand(importPreflightCmd(), importFollowStatusCmd(), importCutoverCmd(), importFollowAbortCmd())
	root.AddCommand(im)
}

// checkSourceURL catches what is certainly wrong with a source URL before
// calling the server (exit 2). Host rules are the server's: a self-hosted
// server may allow private sources (--imports-allow-private).
func checkSourceURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return usageError("--source-url must be a postgres:// or postgresql:// URL with a host")
	}
	return nil
}

func importCmd() *cobra.Command {
	var sourceURL, file string
	var recreate, confirmed, follow bool
	var w waitOpts
	cmd := &cobra.Command{Use: "import", Short: "Import a Postgres database (--source-url) or a dump file (--file) into the project", Args: exactArgs(0),
		Long: "Copies a source database, or a pg_dump file uploaded first, into the project. The import is built\n" +
			"in a new database and swapped in at the end: a failed import leaves the project as it was.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (sourceURL == "") == (file == "") {
				return usageError("exactly one of --source-url and --file is required")
			}
			if follow && (file != "" || recreate) {
				return usageError("--follow takes --source-url, and neither --file nor --recreate")
			}
			var size int64
			if sourceURL != "" {
				if err := checkSourceURL(sourceURL); err != nil {
					return err
				}
			} else {
				st, err := os.Stat(file)
				if err != nil {
					return usageError(fmt.Sprintf("--file: %v", err))
				}
				if !st.Mode().IsRegular() || st.Size() == 0 {
					return usageError(fmt.Sprintf("--file %s is not a non-empty regular file", file))
				}
				size = st.Size()
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			what := "import data into project " + p.Name + " (its current contents are replaced by the import's result)"
			if follow {
				what = "make project " + p.Name + " follow the source (its current contents are replaced by the source's)"
			}
			if err := a.retypeName(p.Name, what, confirmed); err != nil {
				return err
			}
			if follow {
				return a.startFollow(c, p, sourceURL, w)
			}
			req := apiclient.CreateImportRequest{Confirm: true, Recreate: recreate, SourceURL: sourceURL}
			if file != "" {
				key, err := a.uploadDump(c, p, file, size)
				if err != nil {
					return err
				}
				req.UploadKey = key
			}
			job, err := c.CreateImport(a.ctx, p.ID, req)
			if err != nil {
				return op("start import", err)
			}
			if err := a.finishJob(c, job, w, "import into "+p.Name); err != nil || !w.wait {
				return err
			}
			a.note("Project %s now holds the imported data; its URLs and credentials are unchanged", p.Name)
			return nil
		}}
	f := cmd.Flags()
	f.StringVar(&sourceURL, "source-url", "", "postgres:// URL of the source database (direct or session endpoint)")
	f.StringVar(&file, "file", "", "a pg_dump file to upload and import")
	f.BoolVar(&recreate, "recreate", false, "start from an empty database instead of the current contents")
	f.BoolVar(&follow, "follow", false, "start a follow import: copy the schema, then stream changes until `import cutover`")
	f.BoolVar(&confirmed, "confirm", false, "do not ask to retype the project name")
	f.BoolVar(&confirmed, "yes", false, "alias of --confirm")
	_ = f.MarkHidden("yes")
	addWaitFlags(cmd, &w, false, 30*time.Minute)
	return cmd
}

// uploadDump sends file to a fresh upload slot and returns its object key.
func (a *app) uploadDump(c *apiclient.Client, p *apiclient.Project, file string, size int64) (string, error) {
	up, err := c.CreateImportUpload(a.ctx, p.ID)
	if err != nil {
		return "", op("create upload", err)
	}
	fh, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", file, err)
	}
	defer fh.Close()
	t, done, err := a.transfer("uploading " + file)
	if err != nil {
		return "", err
	}
	err = t.Upload(a.ctx, up.UploadURL, fh, size)
	done()
	if err != nil {
		return "", op("upload "+file, err)
	}
	return up.ObjectKey, nil
}

func importPreflightCmd() *cobra.Command {
	var sourceURL string
	cmd := &cobra.Command{Use: "preflight", Short: "Check a source database before importing it (changes nothing)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sourceURL == "" {
				return usageError("--source-url is required")
			}
			if err := checkSourceURL(sourceURL); err != nil {
				return err
			}
			a, c, p, err := projectCmd(cmd)
			if err != nil {
				return err
			}
			res, err := c.ImportPreflight(a.ctx, p.ID, sourceURL)
			if err != nil {
				return op("import preflight", err)
			}
			if res.Source.ServerVersion != "" {
				if local := localPgDumpMajor(); local != "" && local != major(res.Source.ServerVersion) {
					a.note("warning: the local pg_dump is version %s but the source runs %s; use a pg_dump of the source's major for manual dumps",
						local, res.Source.ServerVersion)
				}
			}
			if a.json {
				if err := printJSON(a.out, map[string]any{"preflight": res}); err != nil {
					return err
				}
			} else {
				for _, ch := range res.Checks {
					line := fmt.Sprintf("[%s] %s", ch.Status, ch.Name)
					if ch.Detail != "" {
						line += ": " + ch.Detail
					}
					fmt.Fprintln(a.out, line)
				}
				var exts []string
				for _, e := range res.Source.Extensions {
					exts = append(exts, e.Name+" "+e.Version)
				}
				fields(a.out, [][2]string{
					{"source_version", res.Source.ServerVersion},
					{"source_size", humanBytes(res.Source.DatabaseSizeBytes)},
					{"source_provider", res.Source.Provider},
					{"extensions", strings.Join(exts, ", ")},
					{"target_version", res.TargetVersion},
					{"storage_limit", humanBytes(res.StorageLimitBytes)},
				})
			}
			if !res.OK {
				return withCode(exitError, "import preflight: the source is not ready to import (see the failed checks)")
			}
			return nil
		}}
	cmd.Flags().StringVar(&sourceURL, "source-url", "", "postgres:// URL of the source database (required)")
	return cmd
}

var majorRe = regexp.MustCompile(`(\d+)(?:\.\d+)?`)

// major is the major version in a version string ("16.4" -> "16").
func major(v string) string {
	if m := majorRe.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return ""
}

// localPgDumpMajor is the major of pg_dump on PATH, or "" when there is none.
func localPgDumpMajor() string {
	path, err := exec.LookPath("pg_dump")
	if err != nil {
		return ""
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		return ""
	}
	// "pg_dump (PostgreSQL) 15.4 (Debian 15.4-1)"
	if i := strings.Index(string(out), ")"); i >= 0 {
		return major(string(out[i+1:]))
	}
	return ""
}
