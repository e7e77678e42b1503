package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/runner"
)

// Dumps and restores of whole databases (backups, exports, imports). A dump
// is pg_dump's custom format; a restore always goes into a database of its
// own, which callers then swap in (SwapDatabase) or drop, so a failed load
// never leaves a target half-overwritten.

// TableCounts maps "schema"."table" to its row count.
type TableCounts map[string]int64

// countTablesSQL lists the user tables whose rows a dump carries: ordinary
// tables and partitions, not temporary, not members of an extension.
const countTablesSQL = `
	SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)
	FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	WHERE c.relkind OPERATOR(pg_catalog.=) 'r' AND c.relpersistence OPERATOR(pg_catalog.<>) 't'
	  AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[])
	  AND NOT n.nspname OPERATOR(pg_catalog.~~) 'pg\_%'
	  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
	      AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
	ORDER BY 1`

func countTables(ctx context.Context, conn *pgx.Conn) (TableCounts, error) {
	rows, err := conn.Query(ctx, countTablesSQL)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := TableCounts{}
	for _, t := range names {
		var n int64
		if err := conn.QueryRow(ctx, `SELECT pg_catalog.count(*) FROM `+t).Scan(&n); err != nil {
			return nil, fmt.Errorf("while counting the rows of %s: %w", t, err)
		}
		out[t] = n
	}
	return out, nil
}

// CountRows counts the rows of every user table of db.
// It runs as an agent of db's owner (tenant code can run in a count: a view
// is not counted, but an RLS policy or a shadowed operator could be reached).
func (c *Cluster) CountRows(ctx context.Context, db string) (TableCounts, error) {
	a, err := c.agentForDatabase(ctx, db)
	if err != nil {
		return nil, err
	}
	defer a.close(ctx) //nolint:errcheck
	return countRowsAs(ctx, a, db)
}

func countRowsAs(ctx context.Context, a *agent, db string) (TableCounts, error) {
	conn, err := a.connect(ctx, db, "capydb-verify")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return countTables(ctx, conn)
}

// DumpParams describe a dump of one database of the cluster.
type DumpParams struct {
	Database string
	// Out receives the custom-format archive.
	Out io.Writer
	// Command, when set, receives the result of pg_dump.
	Command func(runner.Result)
}

// Dump writes a custom-format archive of db to p.Out from one exported
// snapshot, and returns the row counts of that same snapshot. The database
// stays writable: the snapshot holds only ACCESS SHARE locks.
func (c *Cluster) Dump(ctx context.Context, p DumpParams) (TableCounts, error) {
	if c.binDir == "" {
		return nil, errors.New("dumps need the PostgreSQL client tools: the cluster has no tools directory")
	}
	a, err := c.agentForDatabase(ctx, p.Database)
	if err != nil {
		return nil, err
	}
	defer a.close(ctx) //nolint:errcheck
	conn, err := a.connect(ctx, p.Database, "capydb-backup")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`); err != nil {
		return nil, err
	}
	var snapshot string
	if err := conn.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
		return nil, fmt.Errorf("while exporting a snapshot of %s: %w", p.Database, err)
	}
	dumpErr := make(chan error, 1)
	go func() {
		dumpErr <- c.runPgTool(ctx, a, "capydb-backup", p.Command, p.Out, "pg_dump", p.Database, "--format=custom",
			"--snapshot="+snapshot, "--lock-wait-timeout="+fmt.Sprint(c.clone.LockTimeout.Milliseconds()),
			"--no-subscriptions", "--no-security-labels", "--no-tablespaces")
	}()
	// The counts come from the same snapshot as the dump, while it runs.
	counts, cerr := countTables(ctx, conn)
	if err := <-dumpErr; err != nil {
		return nil, fmt.Errorf("while dumping %s: %w", p.Database, err)
	}
	if cerr != nil {
		return nil, cerr
	}
	if _, err := conn.Exec(ctx, `COMMIT`); err != nil {
		return nil, err
	}
	return counts, nil
}

// DumpURL writes a custom-format archive of the database at sourceURL (an
// outside server) to out, without owners or privileges.
func (c *Cluster) DumpURL(ctx context.Context, sourceURL string, out io.Writer, command func(runner.Result)) error {
	return c.dumpURL(ctx, sourceURL, out, command)
}

// DumpURLSchema is DumpURL of the schema only (a follow import streams
// the data).
func (c *Cluster) DumpURLSchema(ctx context.Context, sourceURL string, out io.Writer, command func(runner.Result)) error {
	return c.dumpURL(ctx, sourceURL, out, command, "--schema-only")
}

func (c *Cluster) dumpURL(ctx context.Context, sourceURL string, out io.Writer, command func(runner.Result), extra ...string) error {
	u, err := url.Parse(sourceURL)
	if err != nil {
		return fmt.Errorf("while parsing the source URL: %w", err)
	}
	password, _ := u.User.Password()
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	cmd := runner.Cmd{
		Name: filepath.Join(c.binDir, "pg_dump"),
		Args: append([]string{"--dbname=" + u.String(), "--format=custom", "--no-owner", "--no-privileges",
			"--no-subscriptions", "--no-publications", "--no-security-labels", "--no-tablespaces"}, extra...),
		Env:     []string{"PGPASSWORD=" + password, "PGAPPNAME=capydb-import", "PGCONNECT_TIMEOUT=10"},
		Secrets: []string{password, sourceURL},
		Stdout:  out,
	}
	res, err := runner.Run(ctx, cmd)
	if command != nil {
		command(res)
	}
	return err
}

// RestoreParams describe loading an archive into a new database.
type RestoreParams struct {
	// File is the custom-format archive.
	File string
	// Target is created for the load; a leftover owned by Owner (an earlier
	// attempt) is dropped first; one owned by anyone else is a ForeignObjectError.
	Target string
	// Owner owns the target and every restored object.
	Owner string
	// Template is the database the target starts from ("" = template0,
	// i.e. empty; CopyFrom takes precedence).
	Template string
	// CopyFrom, when set, starts the target as a consistent copy of this
	// database (an import on top of the current contents).
	CopyFrom string
	Jobs     int
	Command  func(runner.Result)
}

var extensionEntry = regexp.MustCompile(`^\d+; \d+ \d+ EXTENSION - (\S+)`)

// followEntry matches the archive entries of a follow import's guard
// (follow.go): event triggers (which only a superuser can create), and the
// capydb_follow schema and what is in it.
var followEntry = regexp.MustCompile(`^\d+; \d+ \d+ (EVENT TRIGGER - |SCHEMA - ` + followSchema + ` |\S+ ` + followSchema + ` )`)

// Restore creates p.Target and loads p.File into it as an agent of p.Owner
// (no owners or privileges from the archive), so the target belongs to
// p.Owner whatever the source's roles were; only untrusted extensions are
// created by the superuser, before anything else is loaded (createExtensions).
// On error the target is dropped.
func (c *Cluster) Restore(ctx context.Context, p RestoreParams) error {
	a, err := c.newAgent(ctx, p.Owner)
	if err != nil {
		return err
	}
	defer a.close(ctx) //nolint:errcheck
	return c.restoreAs(ctx, a, p)
}

func (c *Cluster) restoreAs(ctx context.Context, a *agent, p RestoreParams) (err error) {
	if c.binDir == "" {
		return errors.New("restores need the PostgreSQL client tools: the cluster has no tools directory")
	}
	if p.Jobs <= 0 {
		p.Jobs = 2
	}
	if p.CopyFrom != "" {
		if _, err := c.BuildDatabase(ctx, BuildParams{Source: p.CopyFrom, Target: p.Target, Owner: p.Owner, Command: p.Command}); err != nil {
			return err
		}
	} else {
		if err := c.DropDatabaseIfOwned(ctx, p.Target, p.Owner); err != nil {
			return err
		}
		tmpl := p.Template
		if tmpl == "" {
			tmpl = "template0"
		}
		if _, err := c.admin.Exec(ctx, `CREATE DATABASE `+ident(p.Target)+` OWNER `+ident(p.Owner)+` TEMPLATE `+ident(tmpl)); err != nil {
			return fmt.Errorf("while creating database %s: %w", p.Target, err)
		}
		if _, err := c.admin.Exec(ctx, `REVOKE ALL ON DATABASE `+ident(p.Target)+` FROM PUBLIC`); err != nil {
			return err
		}
	}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30e9)
			defer cancel()
			if derr := c.DropDatabaseIfOwned(cctx, p.Target, p.Owner); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()

	listFile, exts, err := c.archiveList(ctx, p.Command, p.File, p.Target)
	if err != nil {
		return err
	}
	defer os.Remove(listFile)
	// A target built from a template holds no tenant object yet; one copied
	// from the live database (CopyFrom) does.
	if err := c.createExtensions(ctx, a, p.Target, exts, p.CopyFrom == ""); err != nil {
		return err
	}
	// Everything else loads as the owner's agent: no owners or privileges
	// from the archive, so every object belongs to p.Owner.
	var sink strings.Builder
	if err := c.runPgTool(ctx, a, "capydb-restore", p.Command, &sink, "pg_restore", p.Target, "--no-owner", "--no-privileges",
		"--exit-on-error", "--use-list="+listFile, fmt.Sprintf("--jobs=%d", p.Jobs), p.File); err != nil {
		return fmt.Errorf("while restoring into %s: %w", p.Target, err)
	}
	return nil
}

// archiveList writes the table of contents of an archive, without its
// extensions, to a private temporary file for pg_restore --use-list, and
// returns the extensions apart: they are created by createExtensions.
func (c *Cluster) archiveList(ctx context.Context, command func(runner.Result), file, target string) (string, []string, error) {
	var list strings.Builder
	if err := c.runPgTool(ctx, nil, "capydb-restore", command, &list, "pg_restore", "", "--list", file); err != nil {
		return "", nil, fmt.Errorf("while reading the archive: %w", err)
	}
	var keep, exts []string
	sc := bufio.NewScanner(strings.NewReader(list.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if m := extensionEntry.FindStringSubmatch(line); m != nil {
			exts = append(exts, m[1])
			continue
		}
		// Comments on extensions belong to their (admin) owner.
		if strings.Contains(line, " COMMENT - EXTENSION ") {
			continue
		}
		// A backup taken during a follow import carries its guard (event
		// trigger, schema and function, all the superuser's): never restored.
		if followEntry.MatchString(line) {
			continue
		}
		keep = append(keep, line)
	}
	sort.Strings(exts)
	lf, err := c.tempFile("restore-" + target + "-*.list")
	if err != nil {
		return "", nil, err
	}
	_, err = lf.WriteString(strings.Join(keep, "\n") + "\n")
	if cerr := lf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(lf.Name())
		return "", nil, err
	}
	return lf.Name(), exts, nil
}

// VerifyArchive restores file into a throwaway database owned by owner,
// compares its row counts with want, and drops it again. One agent of owner
// does both the load and the counts.
func (c *Cluster) VerifyArchive(ctx context.Context, file, scratch, owner string, want TableCounts, command func(runner.Result)) error {
	a, err := c.newAgent(ctx, owner)
	if err != nil {
		return err
	}
	defer a.close(ctx) //nolint:errcheck
	if err := c.restoreAs(ctx, a, RestoreParams{File: file, Target: scratch, Owner: owner, Command: command}); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30e9)
		defer cancel()
		_ = c.DropDatabaseIfOwned(cctx, scratch, owner)
	}()
	got, err := countRowsAs(ctx, a, scratch)
	if err != nil {
		return err
	}
	return CompareCounts(want, got)
}

// CompareCounts reports the first differences between two sets of row counts.
func CompareCounts(want, got TableCounts) error {
	var diffs []string
	for t, n := range want {
		g, ok := got[t]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("table %s is missing", t))
		case g != n:
			diffs = append(diffs, fmt.Sprintf("table %s has %d rows, expected %d", t, g, n))
		}
	}
	for t := range got {
		if _, ok := want[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("unexpected table %s", t))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Strings(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return fmt.Errorf("restored data differs: %s", strings.Join(diffs, "; "))
}
