package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/capydb/capydb/internal/runner"
)

// Clone strategies, as recorded on previews and in job results.
const (
	// StrategyTemplate is CREATE DATABASE … TEMPLATE <source>: a file-level
	// copy, possible only while the source has no sessions.
	StrategyTemplate = "template"
	// StrategySnapshotCopy is a parallel copy of one exported snapshot:
	// schema first, data streamed by several workers, indexes and
	// constraints after the data.
	StrategySnapshotCopy = "snapshot_copy"
	// StrategyEmpty is a blank database from the cluster's template.
	StrategyEmpty = "empty"
)

// Clone phases reported through BuildParams.Progress.
const (
	PhaseCreating  = "creating_database"
	PhaseSchema    = "copying_schema"
	PhaseCopying   = "copying_data"
	PhaseIndexes   = "building_indexes"
	PhaseFinishing = "finishing"
)

// Tunables of the clone; variables so benchmarks and tests can change them.
var (
	// CloneLockTimeout bounds every lock wait of a clone on the source (a
	// running migration holding a table): the clone fails and is retried
	// instead of queueing the project's writers behind it.
	CloneLockTimeout = 30 * time.Second
	// CloneChunkBytes splits tables larger than this into block ranges
	// copied by different workers, so one big table does not serialize the copy.
	CloneChunkBytes int64 = 64 << 20
	// TemplateCopyStrategy is the CREATE DATABASE strategy of a template clone.
	// FILE_COPY copies the files (plus a checkpoint); WAL_LOG writes every
	// page to the WAL. Measured in bench/results/clone.json.
	TemplateCopyStrategy = "FILE_COPY"
	// CloneBinaryCopy streams rows in COPY's binary format (text for
	// tables with a column type that has no binary I/O).
	CloneBinaryCopy = true
)

// CloneProgress is a snapshot of a running build.
type CloneProgress struct {
	Phase      string
	BytesDone  int64
	BytesTotal int64
}

// BuildParams describe a database to build for a preview.
type BuildParams struct {
	// Source is the database to clone; empty builds a blank database from
	// the cluster's template.
	Source string
	// Target is the database to create. A leftover owned by Owner (an
	// earlier attempt) is dropped first; one owned by anyone else is a
	// ForeignObjectError.
	Target string
	// Owner is the login role that owns the target and everything in it.
	Owner string
	// Strategy forces template or snapshot_copy ("" = choose).
	Strategy string
	// Workers is the number of parallel copy workers (default 2).
	Workers int
	// Progress, when set, is called as the build advances (from several
	// goroutines, never concurrently).
	Progress func(CloneProgress)
	// AfterSnapshot is called once the snapshot is exported and before any
	// data is read (tests use it to commit writes that must not appear).
	AfterSnapshot func(ctx context.Context) error
	// Command, when set, receives the result of every external command.
	Command func(runner.Result)
	Log     *slog.Logger
}

// BuildResult says how a build went.
type BuildResult struct {
	Strategy string
	Duration time.Duration
	// Bytes is the size of the copied data (the source database's size for a
	// template copy, the streamed COPY data for a snapshot copy).
	Bytes int64
	// Tables is how many tables a snapshot copy streamed.
	Tables int
	// Unowned lists objects whose ownership could not be moved to Owner.
	Unowned []string
}

// BuildDatabase creates p.Target owned by p.Owner: empty, or a consistent
// copy of p.Source. The source stays writable throughout: no session on it is
// terminated and none of its writes fails. On error the target is dropped.
func (c *Cluster) BuildDatabase(ctx context.Context, p BuildParams) (res BuildResult, err error) {
	start := time.Now()
	if p.Workers <= 0 {
		p.Workers = 2
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Progress == nil {
		p.Progress = func(CloneProgress) {}
	}
	if err := c.DropDatabaseIfOwned(ctx, p.Target, p.Owner); err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			// Leave nothing half-built behind; the caller may retry.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if derr := c.DropDatabaseIfOwned(cctx, p.Target, p.Owner); derr != nil {
				err = errors.Join(err, fmt.Errorf("while removing the partial database %s: %w", p.Target, derr))
			}
		}
	}()
	p.Progress(CloneProgress{Phase: PhaseCreating})

	switch {
	case p.Source == "":
		res.Strategy = StrategyEmpty
		if _, err := c.admin.Exec(ctx, `CREATE DATABASE `+ident(p.Target)+` OWNER `+ident(p.Owner)+
			` TEMPLATE `+ident(TemplateDatabase)); err != nil {
			return res, fmt.Errorf("while creating database %s: %w", p.Target, err)
		}
	default:
		var srcExists bool
		if srcExists, err = c.DatabaseExists(ctx, p.Source); err != nil {
			return res, err
		}
		if !srcExists {
			return res, &ForeignObjectError{Msg: fmt.Sprintf("source database %s does not exist", p.Source)}
		}
		strategy := p.Strategy
		if strategy == "" || strategy == StrategyTemplate {
			ok, terr := c.tryTemplateCopy(ctx, p, strategy == StrategyTemplate)
			if terr != nil {
				return res, terr
			}
			if ok {
				res.Strategy = StrategyTemplate
				if err := c.admin.QueryRow(ctx, `SELECT pg_database_size($1)`, p.Target).Scan(&res.Bytes); err != nil {
					return res, err
				}
				p.Progress(CloneProgress{Phase: PhaseCopying, BytesDone: res.Bytes, BytesTotal: res.Bytes})
				break
			}
			strategy = StrategySnapshotCopy
		}
		if strategy != StrategySnapshotCopy {
			return res, fmt.Errorf("unknown clone strategy %q", strategy)
		}
		res.Strategy = StrategySnapshotCopy
		if err := c.snapshotCopy(ctx, p, &res); err != nil {
			return res, err
		}
	}

	p.Progress(CloneProgress{Phase: PhaseFinishing, BytesDone: res.Bytes, BytesTotal: res.Bytes})
	if _, err := c.admin.Exec(ctx, `REVOKE ALL ON DATABASE `+ident(p.Target)+` FROM PUBLIC`); err != nil {
		return res, fmt.Errorf("while restricting database %s: %w", p.Target, err)
	}
	if p.Source != "" {
		if res.Unowned, err = c.reassignOwnership(ctx, p.Source, p.Target, p.Owner); err != nil {
			return res, err
		}
	}
	res.Duration = time.Since(start)
	return res, nil
}

// tryTemplateCopy clones with CREATE DATABASE … TEMPLATE when the source has
// no sessions. New connections to the source wait (they do not fail) while
// the copy holds its lock; one that slipped in before the lock makes CREATE
// DATABASE fail, and the caller falls back to a snapshot copy.
func (c *Cluster) tryTemplateCopy(ctx context.Context, p BuildParams, forced bool) (bool, error) {
	var sessions, prepared int
	// A client that just disconnected is still listed while its backend
	// exits: give such sessions a moment before settling for a snapshot copy.
	for i := 0; i < 5; i++ {
		if err := c.admin.QueryRow(ctx, `SELECT
				(SELECT count(*) FROM pg_stat_activity WHERE datname = $1),
				(SELECT count(*) FROM pg_prepared_xacts WHERE database = $1)`, p.Source).Scan(&sessions, &prepared); err != nil {
			return false, err
		}
		if sessions+prepared == 0 {
			break
		}
		time.Sleep(40 * time.Millisecond)
	}
	if sessions+prepared > 0 {
		if forced {
			return false, fmt.Errorf("source database %s has %d sessions; a template copy needs none", p.Source, sessions+prepared)
		}
		return false, nil
	}
	var total int64
	_ = c.admin.QueryRow(ctx, `SELECT pg_database_size($1)`, p.Source).Scan(&total)
	p.Progress(CloneProgress{Phase: PhaseCopying, BytesTotal: total})
	_, err := c.admin.Exec(ctx, `CREATE DATABASE `+ident(p.Target)+` OWNER `+ident(p.Owner)+
		` TEMPLATE `+ident(p.Source)+` STRATEGY `+TemplateCopyStrategy)
	if err == nil {
		return true, nil
	}
	var pgErr *pgconn.PgError
	if !forced && errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use: a session arrived
		p.Log.Info("template clone raced with a new session; using a snapshot copy", "source", p.Source)
		return false, c.DropDatabaseIfOwned(ctx, p.Target, p.Owner)
	}
	return false, fmt.Errorf("while copying %s with a template copy: %w", p.Source, err)
}

// copyTable is one table of a snapshot copy.
type copyTable struct {
	oid     uint32
	name    string // quoted, schema-qualified
	columns string // quoted column list
	binary  bool
	bytes   int64
	blocks  int64
}

// copyUnit is a block range of one table (or the whole table).
type copyUnit struct {
	t          *copyTable
	from, to   int64 // block range [from, to); to < 0 = to the end
	whole      bool
	estimBytes int64
}

// snapshotCopy exports one snapshot of the source and builds the target
// from it: pre-data schema, data streamed by p.Workers workers, sequences,
// large objects, then post-data (indexes, constraints, triggers).
func (c *Cluster) snapshotCopy(ctx context.Context, p BuildParams, res *BuildResult) error {
	if c.binDir == "" {
		return errors.New("snapshot copy needs the PostgreSQL client tools: the cluster has no tools directory")
	}
	// The source is read as an agent of its owner, the target written as an
	// agent of p.Owner: tenant code in either runs with that tenant's rights.
	srcAgent, err := c.agentForDatabase(ctx, p.Source)
	if err != nil {
		return err
	}
	defer srcAgent.close(ctx) //nolint:errcheck
	dstAgent, err := c.newAgent(ctx, p.Owner)
	if err != nil {
		return err
	}
	defer dstAgent.close(ctx) //nolint:errcheck
	src, err := srcAgent.connect(ctx, p.Source, "capydb-clone")
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))

	var enc, collate, ctype string
	if err := c.admin.QueryRow(ctx, `SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database
		WHERE datname = $1`, p.Source).Scan(&enc, &collate, &ctype); err != nil {
		return err
	}
	// template0: the target gets exactly the source's extensions, no more.
	if _, err := c.admin.Exec(ctx, `CREATE DATABASE `+ident(p.Target)+` OWNER `+ident(p.Owner)+
		` TEMPLATE template0 ENCODING `+literal(enc)+` LC_COLLATE `+literal(collate)+` LC_CTYPE `+literal(ctype)); err != nil {
		return fmt.Errorf("while creating database %s: %w", p.Target, err)
	}

	snapshot, tables, err := c.exportSnapshot(ctx, src)
	if err != nil {
		return err
	}
	if p.AfterSnapshot != nil {
		if err := p.AfterSnapshot(ctx); err != nil {
			return err
		}
	}

	dir, err := c.tempDir("clone-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	schemaFile := filepath.Join(dir, "schema.dump")

	p.Progress(CloneProgress{Phase: PhaseSchema})
	if err := c.runTool(ctx, srcAgent, p, "pg_dump", p.Source, "--schema-only", "--format=custom", "--file="+schemaFile,
		"--snapshot="+snapshot, "--lock-wait-timeout="+fmt.Sprint(CloneLockTimeout.Milliseconds()),
		"--no-subscriptions", "--no-security-labels", "--no-tablespaces"); err != nil {
		return fmt.Errorf("while reading the schema of %s: %w", p.Source, err)
	}
	// The target is still empty: its extensions are created first (by the
	// superuser only where they are untrusted), then the schema loads as
	// p.Owner's agent, owning everything it creates.
	listFile, exts, err := c.archiveList(ctx, p.Command, schemaFile, p.Target)
	if err != nil {
		return err
	}
	defer os.Remove(listFile)
	if err := c.createExtensions(ctx, dstAgent, p.Target, exts, true); err != nil {
		return err
	}
	restore := []string{"--no-owner", "--no-privileges", "--exit-on-error", "--use-list=" + listFile}
	if err := c.runTool(ctx, dstAgent, p, "pg_restore", p.Target, append(restore, "--section=pre-data", schemaFile)...); err != nil {
		return fmt.Errorf("while creating the schema in %s: %w", p.Target, err)
	}

	var total int64
	for _, t := range tables {
		total += t.bytes
	}
	var done atomic.Int64
	var progressMu sync.Mutex
	lastReport := time.Now()
	report := func(force bool) {
		progressMu.Lock()
		defer progressMu.Unlock()
		if !force && time.Since(lastReport) < 250*time.Millisecond {
			return
		}
		lastReport = time.Now()
		p.Progress(CloneProgress{Phase: PhaseCopying, BytesDone: done.Load(), BytesTotal: max(total, done.Load())})
	}
	report(true)
	if err := c.copyData(ctx, p, srcAgent, dstAgent, snapshot, tables, &done, func() { report(false) }); err != nil {
		return err
	}
	res.Bytes, res.Tables = done.Load(), len(tables)
	report(true)
	if err := c.copySequencesAndLargeObjects(ctx, src, dstAgent, p); err != nil {
		return err
	}
	// The snapshot and the source's table locks are no longer needed.
	if _, err := src.Exec(ctx, `COMMIT`); err != nil {
		return err
	}

	p.Progress(CloneProgress{Phase: PhaseIndexes, BytesDone: res.Bytes, BytesTotal: res.Bytes})
	if err := c.runTool(ctx, dstAgent, p, "pg_restore", p.Target, append(restore, "--section=post-data",
		fmt.Sprintf("--jobs=%d", p.Workers), schemaFile)...); err != nil {
		return fmt.Errorf("while building indexes and constraints in %s: %w", p.Target, err)
	}
	return c.refreshMaterializedViews(ctx, srcAgent, dstAgent, p.Source, p.Target)
}

// listTablesSQL lists the tables whose rows a clone copies: ordinary tables
// (partitions included), not temporary, not members of an extension.
//
// Catalog SQL run inside a tenant database qualifies every function and
// operator with pg_catalog: a tenant can shadow them in public by exact
// type match (quote_ident(name) beats pg_catalog.quote_ident(text)).
const listTablesSQL = `
	SELECT c.oid, pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname),
		COALESCE((SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
			FROM pg_catalog.pg_attribute a
			WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
			  AND a.attgenerated OPERATOR(pg_catalog.=) ''), ''),
		NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type ty ON ty.oid OPERATOR(pg_catalog.=) a.atttypid
			WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
			  AND (ty.typsend OPERATOR(pg_catalog.=) 0 OR ty.typreceive OPERATOR(pg_catalog.=) 0)),
		pg_catalog.pg_table_size(c.oid),
		pg_catalog.pg_relation_size(c.oid) OPERATOR(pg_catalog./) pg_catalog.current_setting('block_size')::pg_catalog.int8
	FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	WHERE c.relkind OPERATOR(pg_catalog.=) 'r' AND c.relpersistence OPERATOR(pg_catalog.<>) 't'
	  AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[])
	  AND NOT n.nspname OPERATOR(pg_catalog.~~) 'pg\_toast%'
	  AND NOT n.nspname OPERATOR(pg_catalog.~~) 'pg\_temp\_%'
	  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
	      AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
	ORDER BY c.oid`

// lockableSQL lists relations locked for the duration of the snapshot, so
// no DDL (TRUNCATE, DROP, ALTER) can change them under the copy.
const lockableSQL = `
	SELECT c.oid, pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)
	FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.char[]) AND c.relpersistence OPERATOR(pg_catalog.<>) 't'
	  AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[])
	  AND NOT n.nspname OPERATOR(pg_catalog.~~) 'pg\_toast%'
	  AND NOT n.nspname OPERATOR(pg_catalog.~~) 'pg\_temp\_%'
	ORDER BY c.oid`

// exportSnapshot opens the coordinator transaction on src: the tables are
// locked ACCESS SHARE (readers and writers go on; only DDL waits) before the
// snapshot is taken, so every table is read as of that one instant.
func (c *Cluster) exportSnapshot(ctx context.Context, src *pgx.Conn) (string, []*copyTable, error) {
	lockable := func(q func(string, ...any) (pgx.Rows, error)) (map[uint32]string, error) {
		rows, err := q(lockableSQL)
		if err != nil {
			return nil, err
		}
		out := map[uint32]string{}
		var oid uint32
		var name string
		_, err = pgx.ForEachRow(rows, []any{&oid, &name}, func() error { out[oid] = name; return nil })
		return out, err
	}
	q := func(sql string, args ...any) (pgx.Rows, error) { return src.Query(ctx, sql, args...) }
	for attempt := 1; ; attempt++ {
		before, err := lockable(q)
		if err != nil {
			return "", nil, err
		}
		// LOCK takes no snapshot, so the snapshot below is taken after every
		// lock is held.
		if _, err := src.Exec(ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY`); err != nil {
			return "", nil, err
		}
		if _, err := src.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, CloneLockTimeout.Milliseconds())); err != nil {
			return "", nil, err
		}
		if err := lockAll(ctx, src, before); err != nil {
			_, _ = src.Exec(ctx, `ROLLBACK`)
			var pgErr *pgconn.PgError
			if attempt < 3 && errors.As(err, &pgErr) && pgErr.Code == "42P01" { // dropped meanwhile
				continue
			}
			return "", nil, fmt.Errorf("while locking the source tables: %w", err)
		}
		var snapshot string
		if err := src.QueryRow(ctx, `SELECT pg_catalog.pg_export_snapshot()`).Scan(&snapshot); err != nil {
			return "", nil, err
		}
		// Tables created between the listing and the snapshot are visible
		// in it; lock them too.
		after, err := lockable(q)
		if err != nil {
			return "", nil, err
		}
		extra := map[uint32]string{}
		for oid, name := range after {
			if _, ok := before[oid]; !ok {
				extra[oid] = name
			}
		}
		if err := lockAll(ctx, src, extra); err != nil {
			return "", nil, fmt.Errorf("while locking the source tables: %w", err)
		}
		rows, err := src.Query(ctx, listTablesSQL)
		if err != nil {
			return "", nil, err
		}
		var tables []*copyTable
		var t copyTable
		_, err = pgx.ForEachRow(rows, []any{&t.oid, &t.name, &t.columns, &t.binary, &t.bytes, &t.blocks}, func() error {
			tt := t
			tables = append(tables, &tt)
			return nil
		})
		return snapshot, tables, err
	}
}

func lockAll(ctx context.Context, conn *pgx.Conn, rels map[uint32]string) error {
	if len(rels) == 0 {
		return nil
	}
	names := make([]string, 0, len(rels))
	for _, n := range rels {
		names = append(names, n)
	}
	sort.Strings(names)
	// One statement per batch keeps the lock queue short and the SQL bounded.
	for i := 0; i < len(names); i += 500 {
		j := min(i+500, len(names))
		if _, err := conn.Exec(ctx, `LOCK TABLE `+strings.Join(names[i:j], ", ")+` IN ACCESS SHARE MODE`); err != nil {
			return err
		}
	}
	return nil
}

// units splits the tables into work units, biggest first.
func units(tables []*copyTable) []copyUnit {
	var out []copyUnit
	for _, t := range tables {
		blockBytes := int64(8192)
		chunkBlocks := CloneChunkBytes / blockBytes
		if t.blocks <= chunkBlocks || chunkBlocks <= 0 || t.columns == "" {
			out = append(out, copyUnit{t: t, whole: true, to: -1, estimBytes: t.bytes})
			continue
		}
		n := (t.blocks + chunkBlocks - 1) / chunkBlocks
		per := t.bytes / n
		for i := int64(0); i < n; i++ {
			u := copyUnit{t: t, from: i * chunkBlocks, to: (i + 1) * chunkBlocks, estimBytes: per}
			if i == n-1 {
				u.to = -1 // open-ended: rows past the size read above are included
			}
			out = append(out, u)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].estimBytes > out[j].estimBytes })
	return out
}

// copyData streams every unit from the source (inside the snapshot) into the
// target with COPY, p.Workers units at a time.
//
// Rows are relayed through this process: server-side COPY to files or FIFOs
// would need pg_write_server_files for the agents, which no tenant may hold.
func (c *Cluster) copyData(ctx context.Context, p BuildParams, srcAgent, dstAgent *agent, snapshot string, tables []*copyTable,
	done *atomic.Int64, tick func()) error {
	work := units(tables)
	if len(work) == 0 {
		return nil
	}
	next := make(chan copyUnit)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(next)
		for _, u := range work {
			select {
			case next <- u:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for i := 0; i < min(p.Workers, len(work)); i++ {
		g.Go(func() error {
			src, err := srcAgent.connect(gctx, p.Source, "capydb-clone")
			if err != nil {
				return err
			}
			defer src.Close(context.WithoutCancel(ctx))
			for _, sql := range []string{`BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY`,
				`SET TRANSACTION SNAPSHOT ` + literal(snapshot),
				fmt.Sprintf(`SET LOCAL lock_timeout = %d`, CloneLockTimeout.Milliseconds())} {
				if _, err := src.Exec(gctx, sql); err != nil {
					return fmt.Errorf("while joining the clone snapshot: %w", err)
				}
			}
			dst, err := dstAgent.connect(gctx, p.Target, "capydb-clone")
			if err != nil {
				return err
			}
			defer dst.Close(context.WithoutCancel(ctx))
			if _, err := dst.Exec(gctx, `SET synchronous_commit = off`); err != nil {
				return err
			}
			for u := range next {
				format := "text"
				if u.t.binary && CloneBinaryCopy {
					format = "binary"
				}
				if err := copyUnitData(gctx, src.PgConn(), dst.PgConn(), u, format, done, tick); err != nil {
					return fmt.Errorf("while copying %s: %w", u.t.name, err)
				}
			}
			_, err = src.Exec(gctx, `COMMIT`)
			return err
		})
	}
	return g.Wait()
}

// countingWriter adds what passes through it to a shared counter.
type countingWriter struct {
	w    io.Writer
	n    *atomic.Int64
	tick func()
}

func (cw *countingWriter) Write(b []byte) (int, error) {
	n, err := cw.w.Write(b)
	cw.n.Add(int64(n))
	cw.tick()
	return n, err
}

// copyStatements renders a unit's COPY out of the source (into to) and
// into the target (out of from): STDOUT/STDIN or a server-side file.
func copyStatements(u copyUnit, format, to, from string) (string, string) {
	opts := ` (FORMAT ` + format + `)`
	var out string
	switch {
	case u.t.columns == "":
		// A table without columns still has rows; COPY handles them.
		out = `COPY ` + u.t.name + ` TO ` + to + opts
	case u.whole:
		out = `COPY ` + u.t.name + ` (` + u.t.columns + `) TO ` + to + opts
	default:
		cond := fmt.Sprintf(`ctid >= '(%d,0)'::tid`, u.from)
		if u.to >= 0 {
			cond += fmt.Sprintf(` AND ctid < '(%d,0)'::tid`, u.to)
		}
		out = `COPY (SELECT ` + u.t.columns + ` FROM ONLY ` + u.t.name + ` WHERE ` + cond + `) TO ` + to + opts
	}
	in := `COPY ` + u.t.name + ` (` + u.t.columns + `) FROM ` + from + opts
	if u.t.columns == "" {
		in = `COPY ` + u.t.name + ` FROM ` + from + opts
	}
	return out, in
}

// copyUnitData relays COPY … TO STDOUT on src into COPY … FROM STDIN on dst.
// Rows are batched into 256 KiB writes so the relay costs few context switches.
func copyUnitData(ctx context.Context, src, dst *pgconn.PgConn, u copyUnit, format string, done *atomic.Int64, tick func()) error {
	from, into := copyStatements(u, format, "STDOUT", "STDIN")
	pr, pw := io.Pipe()
	srcErr := make(chan error, 1)
	go func() {
		bw := bufio.NewWriterSize(&countingWriter{w: pw, n: done, tick: tick}, 256<<10)
		_, err := src.CopyTo(ctx, bw, from)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err) // nil = EOF for the reader
		srcErr <- err
	}()
	_, dstErr := dst.CopyFrom(ctx, pr, into)
	pr.CloseWithError(errors.New("copy into the target stopped")) // unblock the source side
	if err := <-srcErr; err != nil {
		return err
	}
	return dstErr
}

// copySequencesAndLargeObjects sets every sequence of the target to the
// source's value and copies large objects, both from the snapshot's
// coordinator transaction.
func (c *Cluster) copySequencesAndLargeObjects(ctx context.Context, src *pgx.Conn, dstAgent *agent, p BuildParams) error {
	rows, err := src.Query(ctx, `SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
		WHERE c.relkind OPERATOR(pg_catalog.=) 'S'
		  AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[])
		  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		      AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')`)
	if err != nil {
		return err
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	var loids []uint32
	rows, err = src.Query(ctx, `SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid`)
	if err != nil {
		return err
	}
	if loids, err = pgx.CollectRows(rows, pgx.RowTo[uint32]); err != nil {
		return err
	}
	if len(seqs) == 0 && len(loids) == 0 {
		return nil
	}
	dst, err := dstAgent.connect(ctx, p.Target, "capydb-clone")
	if err != nil {
		return err
	}
	defer dst.Close(context.WithoutCancel(ctx))
	for _, s := range seqs {
		var last int64
		var called bool
		if err := src.QueryRow(ctx, `SELECT last_value, is_called FROM `+s).Scan(&last, &called); err != nil {
			return fmt.Errorf("while reading sequence %s: %w", s, err)
		}
		if _, err := dst.Exec(ctx, `SELECT pg_catalog.setval($1::pg_catalog.regclass, $2, $3)`, s, last, called); err != nil {
			return fmt.Errorf("while setting sequence %s: %w", s, err)
		}
	}
	for _, oid := range loids {
		var data []byte
		// lo_get checks the reader's privilege on the object (pg_largeobject
		// itself is readable by superusers only).
		if err := src.QueryRow(ctx, `SELECT pg_catalog.lo_get($1)`, oid).Scan(&data); err != nil {
			return fmt.Errorf("while reading large object %d: %w", oid, err)
		}
		if _, err := dst.Exec(ctx, `SELECT pg_catalog.lo_from_bytea($1, $2)`, oid, data); err != nil {
			return fmt.Errorf("while copying large object %d: %w", oid, err)
		}
		if _, err := dst.Exec(ctx, fmt.Sprintf(`ALTER LARGE OBJECT %d OWNER TO %s`, oid, ident(p.Owner))); err != nil {
			return err
		}
	}
	return nil
}

// refreshMaterializedViews fills the target's materialized views that hold
// data in the source (a schema dump creates them empty). A view built on
// another one may need a second pass.
func (c *Cluster) refreshMaterializedViews(ctx context.Context, srcAgent, dstAgent *agent, source, target string) error {
	src, err := srcAgent.connect(ctx, source, "capydb-clone")
	if err != nil {
		return err
	}
	rows, err := src.Query(ctx, `SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
		WHERE c.relkind OPERATOR(pg_catalog.=) 'm' AND c.relispopulated ORDER BY c.oid`)
	var views []string
	if err == nil {
		views, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	src.Close(context.WithoutCancel(ctx))
	if err != nil || len(views) == 0 {
		return err
	}
	dst, err := dstAgent.connect(ctx, target, "capydb-clone")
	if err != nil {
		return err
	}
	defer dst.Close(context.WithoutCancel(ctx))
	pending := views
	for pass := 0; pass < 5 && len(pending) > 0; pass++ {
		var failed []string
		var lastErr error
		for _, v := range pending {
			if _, err := dst.Exec(ctx, `REFRESH MATERIALIZED VIEW `+v); err != nil {
				failed, lastErr = append(failed, v), err
			}
		}
		if len(failed) == len(pending) {
			return fmt.Errorf("while refreshing materialized views: %w", lastErr)
		}
		pending = failed
	}
	return nil
}

// reassignOwnership gives owner every object in db that a non-superuser
// role other than owner owns (a template copy keeps the source's owners).
// REASSIGN OWNED cannot be used: it would also hand over the project's own
// database (a shared object). It runs as an agent that is a member of owner
// and of the source's roles — the two tenants of one project — and only
// issues ALTER … OWNER, which runs no tenant code.
func (c *Cluster) reassignOwnership(ctx context.Context, source, db, owner string) ([]string, error) {
	srcOwner, err := c.databaseOwner(ctx, source)
	if err != nil {
		return nil, err
	}
	a, err := c.newUnionAgent(ctx, owner, srcOwner)
	if err != nil {
		return nil, err
	}
	defer a.close(ctx) //nolint:errcheck
	conn, err := a.connect(ctx, db, "capydb-clone")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var failed map[string]string
	for pass := 0; pass < 3; pass++ {
		rows, err := conn.Query(ctx, `SELECT o.type, o.identity
			FROM pg_catalog.pg_shdepend d
			JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) d.refobjid
			CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) o
			WHERE d.dbid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database
			      WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
			  AND d.deptype OPERATOR(pg_catalog.=) 'o' AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_authid'::pg_catalog.regclass
			  AND r.rolname OPERATOR(pg_catalog.<>) $1 AND NOT r.rolsuper
			  AND NOT r.rolname OPERATOR(pg_catalog.~~) 'capydb\_agent\_%'
			ORDER BY o.type OPERATOR(pg_catalog.=) 'sequence', d.classid, d.objid`, owner)
		if err != nil {
			return nil, err
		}
		type obj struct{ typ, identity string }
		objs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (obj, error) {
			var o obj
			return o, r.Scan(&o.typ, &o.identity)
		})
		if err != nil {
			return nil, err
		}
		failed = map[string]string{}
		progress := false
		for _, o := range objs {
			stmt := alterOwnerSQL(o.typ, o.identity, owner)
			if stmt == "" {
				continue
			}
			if _, err := conn.Exec(ctx, stmt); err != nil {
				failed[o.typ+" "+o.identity] = err.Error()
				continue
			}
			progress = true
		}
		if len(failed) == 0 || !progress {
			break
		}
	}
	var out []string
	for k, v := range failed {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return out, nil
}

// alterOwnerSQL renders ALTER … OWNER TO for an object described by
// pg_identify_object, or "" for kinds whose owner follows another object
// (indexes, TOAST tables) or cannot change.
func alterOwnerSQL(typ, identity, owner string) string {
	kw := map[string]string{
		"table": "TABLE", "partitioned table": "TABLE", "view": "VIEW", "materialized view": "MATERIALIZED VIEW",
		"foreign table": "FOREIGN TABLE", "sequence": "SEQUENCE", "type": "TYPE", "composite type": "TYPE",
		"domain": "DOMAIN", "function": "FUNCTION", "procedure": "PROCEDURE", "aggregate": "AGGREGATE",
		"schema": "SCHEMA", "collation": "COLLATION", "conversion": "CONVERSION", "operator": "OPERATOR",
		"operator class": "OPERATOR CLASS", "operator family": "OPERATOR FAMILY",
		"text search dictionary": "TEXT SEARCH DICTIONARY", "text search configuration": "TEXT SEARCH CONFIGURATION",
		"statistics object": "STATISTICS", "publication": "PUBLICATION", "server": "SERVER",
		"foreign-data wrapper": "FOREIGN DATA WRAPPER", "language": "LANGUAGE", "event trigger": "EVENT TRIGGER",
		"large object": "LARGE OBJECT",
	}[typ]
	if kw == "" {
		return ""
	}
	return `ALTER ` + kw + ` ` + identity + ` OWNER TO ` + ident(owner)
}

// runTool runs pg_dump or pg_restore from the cluster's tools directory
// against db, as agent a; the password travels in PGPASSWORD.
func (c *Cluster) runTool(ctx context.Context, a *agent, p BuildParams, tool, db string, args ...string) error {
	dsn, password, err := a.toolDSN(db)
	if err != nil {
		return err
	}
	all := append([]string{"--dbname=" + dsn}, args...)
	cmd := runner.Cmd{
		Name: filepath.Join(c.binDir, tool),
		Args: all,
		Env: []string{"PGPASSWORD=" + password, "PGAPPNAME=capydb-clone",
			// Index builds after the data: more memory, no waiting for WAL flushes.
			"PGOPTIONS=-c maintenance_work_mem=256MB -c synchronous_commit=off"},
		Secrets: []string{password},
	}
	res, err := runner.Run(ctx, cmd)
	if p.Command != nil {
		p.Command(res)
	}
	return err
}

// DropDatabaseIfOwned drops db (terminating its sessions) when it does not
// exist or owner owns it; a database owned by anyone else is never touched.
func (c *Cluster) DropDatabaseIfOwned(ctx context.Context, db, owner string) error {
	var actual string
	err := c.admin.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, db).Scan(&actual)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if actual != owner {
		return &ForeignObjectError{Msg: fmt.Sprintf("database %s already exists and belongs to %s", db, actual)}
	}
	if _, err := c.admin.Exec(ctx, `DROP DATABASE IF EXISTS `+ident(db)+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("while dropping database %s: %w", db, err)
	}
	// A database that existed may be listed in the pooler's configuration
	// (a scratch or build target a sync saw): it must not outlive the drop.
	return c.SyncPooler(ctx)
}

// SwapDatabase puts next in place of main: main's sessions are ended, main
// becomes old, next becomes main, old is dropped. All three must belong to
// owner. RecoverSwap first undoes a swap an earlier attempt left halfway.
func (c *Cluster) SwapDatabase(ctx context.Context, main, next, old, owner string) error {
	if err := c.RecoverSwap(ctx, main, old, owner); err != nil {
		return err
	}
	exists, err := c.DatabaseExists(ctx, main)
	if err != nil {
		return err
	}
	if exists {
		// No new sessions may start on main while it is renamed.
		if _, err := c.admin.Exec(ctx, `ALTER DATABASE `+ident(main)+` ALLOW_CONNECTIONS false`); err != nil {
			return fmt.Errorf("while closing database %s: %w", main, err)
		}
		if err := c.reconnect(ctx, main); err != nil {
			return err
		}
		if _, err := c.admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, main); err != nil {
			return err
		}
		if err := c.renameWhenIdle(ctx, main, old); err != nil {
			return err
		}
	}
	if err := c.renameWhenIdle(ctx, next, main); err != nil {
		return err
	}
	if err := c.DropDatabaseIfOwned(ctx, old, owner); err != nil {
		return err
	}
	if err := c.SyncPooler(ctx); err != nil {
		return err
	}
	return c.reconnect(ctx, main)
}

// renameWhenIdle renames a database, waiting briefly for terminated
// sessions to finish exiting.
func (c *Cluster) renameWhenIdle(ctx context.Context, from, to string) error {
	var err error
	for i := 0; i < 50; i++ {
		_, err = c.admin.Exec(ctx, `ALTER DATABASE `+ident(from)+` RENAME TO `+ident(to))
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" {
			break
		}
		_, _ = c.admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, from)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("while renaming database %s to %s: %w", from, to, err)
	}
	return nil
}

// RecoverSwap repairs what an interrupted SwapDatabase left: when main is
// missing but old exists, old goes back to being main; when both exist the
// swap had finished and old is dropped. main always accepts connections
// afterwards.
func (c *Cluster) RecoverSwap(ctx context.Context, main, old, owner string) error {
	mainExists, err := c.DatabaseExists(ctx, main)
	if err != nil {
		return err
	}
	oldExists, err := c.DatabaseExists(ctx, old)
	if err != nil {
		return err
	}
	switch {
	case !mainExists && oldExists:
		if err := c.renameWhenIdle(ctx, old, main); err != nil {
			return err
		}
		mainExists = true
	case mainExists && oldExists:
		if err := c.DropDatabaseIfOwned(ctx, old, owner); err != nil {
			return err
		}
	}
	if mainExists {
		if _, err := c.admin.Exec(ctx, `ALTER DATABASE `+ident(main)+` ALLOW_CONNECTIONS true`); err != nil {
			return fmt.Errorf("while reopening database %s: %w", main, err)
		}
	}
	return nil
}

// SetToolsDir names the directory holding pg_dump and pg_restore of the
// cluster's major version (snapshot copies need them).
func (c *Cluster) SetToolsDir(dir string) { c.binDir = dir }
