package dataplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"

	"github.com/capydb/capydb/internal/ids"
)

// localPipes is a directory on the cluster's own host where CapyDB makes
// named pipes (FIFOs) for clones: the source backend writes COPY TO into one
// and the target backend reads COPY FROM out of it, so the rows go from one
// server process to the other through the kernel, with no TLS and no relay
// through this process. Only possible when CapyDB runs on the cluster's host.
type localPipes struct {
	dir      string
	uid, gid int // the server's OS user, which must be able to open the FIFOs
}

// UseLocalPipes makes clones stream through FIFOs in dir when the cluster's
// server runs on this host (its data directory is visible here and it can
// see dir). Otherwise clones relay the rows through this process.
func (c *Cluster) UseLocalPipes(ctx context.Context, dir string) error {
	var dataDir string
	if err := c.admin.QueryRow(ctx, `SELECT current_setting('data_directory')`).Scan(&dataDir); err != nil {
		return err
	}
	st, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("the cluster's data directory is not on this host: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("cannot tell the owner of the cluster's data directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o711); err != nil {
		return err
	}
	// Traversable by the server's user; only its FIFOs (0600, its own) are usable.
	if err := os.Chmod(abs, 0o711); err != nil {
		return err
	}
	// The server must see the same directory (not a namesake on another host).
	if _, err := c.admin.Exec(ctx, `SELECT pg_stat_file($1)`, abs); err != nil {
		return fmt.Errorf("the cluster's server cannot see %s: %w", abs, err)
	}
	c.pipes = &localPipes{dir: abs, uid: int(sys.Uid), gid: int(sys.Gid)}
	return nil
}

// copyUnitPiped copies one unit through a FIFO: the source backend runs
// COPY … TO '<fifo>' and the target backend COPY … FROM '<fifo>' at once.
// If either fails, opening and closing the FIFO here releases the other
// from a blocking open (a writer then gets EPIPE, a reader EOF); the build
// fails as a whole, so a reader's partial rows never survive.
func copyUnitPiped(ctx context.Context, p *localPipes, src, dst *pgconn.PgConn, u copyUnit, format string) error {
	return p.pipeCopy(ctx, src, dst, func(path string) (string, string) {
		return copyStatements(u, format, literal(path), literal(path))
	})
}

// pipeCopy runs the two COPY statements that stmts renders for a fresh FIFO.
func (p *localPipes) pipeCopy(ctx context.Context, src, dst *pgconn.PgConn, stmts func(path string) (string, string)) error {
	path := filepath.Join(p.dir, "clone-"+ids.RandomBase62(16))
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return fmt.Errorf("while making a pipe: %w", err)
	}
	defer os.Remove(path)
	if os.Geteuid() != p.uid {
		if err := os.Chown(path, p.uid, p.gid); err != nil {
			return fmt.Errorf("while handing a pipe to the server's user: %w", err)
		}
	}
	// Once one side failed (or ctx ended), the other may be blocked opening
	// the FIFO, or may get there only later: keep opening and closing it
	// until both statements have returned.
	finished := make(chan struct{})
	var once sync.Once
	unblock := func() {
		once.Do(func() {
			go func() {
				for {
					if f, err := os.OpenFile(path, os.O_RDWR|unix.O_NONBLOCK, 0); err == nil {
						f.Close()
					}
					select {
					case <-finished:
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			}()
		})
	}
	defer close(finished)
	stop := context.AfterFunc(ctx, unblock)
	defer stop()
	from, into := stmts(path)
	srcDone := make(chan error, 1)
	go func() {
		_, err := src.Exec(ctx, from).ReadAll()
		if err != nil {
			unblock()
		}
		srcDone <- err
	}()
	_, dstErr := dst.Exec(ctx, into).ReadAll()
	if dstErr != nil {
		unblock()
	}
	if err := <-srcDone; err != nil {
		return err
	}
	return dstErr
}
