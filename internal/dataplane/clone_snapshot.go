package dataplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

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
func (c *Cluster) snapshotCopy(ctx context.Context, p BuildParams, res *BuildResult, st *steps) error {
	if c.binDir == "" {
		return errors.New("snapshot copy needs the PostgreSQL client tools: the cluster has no tools directory")
	}
	// The source is read as an agent of its owner, the target written as an
	// agent of p.Owner: tenant code in either runs with that tenant's rights.
	// Both are created at once (each is a few catalog writes).
	var srcAgent, dstAgent *agent
	var srcErr, dstErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srcAgent, srcErr = c.agentForDatabase(ctx, p.Source) }()
	dstAgent, dstErr = c.newAgent(ctx, p.Owner)
	wg.Wait()
	if srcAgent != nil {
		defer srcAgent.close(ctx) //nolint:errcheck
	}
	if dstAgent != nil {
		defer dstAgent.close(ctx) //nolint:errcheck
	}
	if err := errors.Join(srcErr, dstErr); err != nil {
		return err
	}
	src, err := srcAgent.connect(ctx, p.Source, "capydb-clone")
	if err != nil {
		return err
	}
	defer src.Close(context.WithoutCancel(ctx))
	st.lap("agents_connect")

	var enc, collate, ctype string
	if err := c.admin.QueryRow(ctx, `SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database
		WHERE datname = $1`, p.Source).Scan(&enc, &collate, &ctype); err != nil {
		return err
	}
	// template0: the target gets exactly the source's extensions, no more.
	// It is created while the snapshot is taken and the schema dumped; every
	// return below waits for it, so a failed build can drop it.
	created := make(chan error, 1)
	go func() {
		_, err := c.admin.Exec(ctx, `CREATE DATABASE `+ident(p.Target)+` OWNER `+ident(p.Owner)+
			` TEMPLATE template0 ENCODING `+literal(enc)+` LC_COLLATE `+literal(collate)+` LC_CTYPE `+literal(ctype))
		if err != nil {
			err = fmt.Errorf("while creating database %s: %w", p.Target, err)
		}
		created <- err
	}()
	joined := false
	waitCreated := func() error {
		joined = true
		return <-created
	}
	defer func() {
		if !joined {
			<-created
		}
	}()

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

	st.lap("snapshot")
	p.Progress(CloneProgress{Phase: PhaseSchema})
	if err := c.runTool(ctx, srcAgent, p, "pg_dump", p.Source, "--schema-only", "--format=custom", "--file="+schemaFile,
		"--snapshot="+snapshot, "--lock-wait-timeout="+fmt.Sprint(c.clone.LockTimeout.Milliseconds()),
		"--no-subscriptions", "--no-security-labels", "--no-tablespaces"); err != nil {
		return fmt.Errorf("while reading the schema of %s: %w", p.Source, err)
	}
	// The target is still empty: its extensions are created first (by the
	// superuser only where they are untrusted), then the schema loads as
	// p.Owner's agent, owning everything it creates.
	st.lap("schema_dump")
	listFile, exts, err := c.archiveList(ctx, p.Command, schemaFile, p.Target)
	if err != nil {
		return err
	}
	defer os.Remove(listFile)
	if err := waitCreated(); err != nil {
		return err
	}
	st.lap("create_database_wait")
	if err := c.createExtensions(ctx, dstAgent, p.Target, exts, true); err != nil {
		return err
	}
	restore := []string{"--no-owner", "--no-privileges", "--exit-on-error", "--use-list=" + listFile}
	if err := c.runTool(ctx, dstAgent, p, "pg_restore", p.Target, append(restore, "--section=pre-data", schemaFile)...); err != nil {
		return fmt.Errorf("while creating the schema in %s: %w", p.Target, err)
	}
	st.lap("schema_restore")

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
	st.lap("copy_data")
	res.Bytes, res.Tables = done.Load(), len(tables)
	report(true)
	if err := c.copySequencesAndLargeObjects(ctx, src, dstAgent, p); err != nil {
		return err
	}
	// The snapshot and the source's table locks are no longer needed.
	if _, err := src.Exec(ctx, `COMMIT`); err != nil {
		return err
	}

	st.lap("sequences")
	p.Progress(CloneProgress{Phase: PhaseIndexes, BytesDone: res.Bytes, BytesTotal: res.Bytes})
	if err := c.runTool(ctx, dstAgent, p, "pg_restore", p.Target, append(restore, "--section=post-data",
		fmt.Sprintf("--jobs=%d", p.Workers), schemaFile)...); err != nil {
		return fmt.Errorf("while building indexes and constraints in %s: %w", p.Target, err)
	}
	st.lap("post_data")
	// The coordinator session (its snapshot committed) lists them.
	err = c.refreshMaterializedViews(ctx, src, dstAgent, p.Target)
	st.lap("matviews")
	return err
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
		if _, err := src.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, c.clone.LockTimeout.Milliseconds())); err != nil {
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
func units(tables []*copyTable, chunkBytes int64) []copyUnit {
	var out []copyUnit
	for _, t := range tables {
		blockBytes := int64(8192)
		chunkBlocks := chunkBytes / blockBytes
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
