package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"
)

// copyData streams every unit from the source (inside the snapshot) into the
// target with COPY, p.Workers units at a time.
//
// Rows are relayed through this process: server-side COPY to files or FIFOs
// would need pg_write_server_files for the agents, which no tenant may hold.
func (c *Cluster) copyData(ctx context.Context, p BuildParams, srcAgent, dstAgent *agent, snapshot string, tables []*copyTable,
	done *atomic.Int64, tick func()) error {
	work := units(tables, c.clone.ChunkBytes)
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
				fmt.Sprintf(`SET LOCAL lock_timeout = %d`, c.clone.LockTimeout.Milliseconds())} {
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
				if u.t.binary && !c.clone.TextCopy {
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
