package localcluster

import (
	"context"
	"os"
	"path/filepath"
	"syscall"

	"github.com/jackc/pgx/v5"
)

// bouncerInstance is one of the two pgbouncer processes. pgbouncer picks the
// pool mode per database or user, never per listening port, so the
// session-mode endpoint is a second process on its own port. Both read the
// same auth file and the same tenant list (rendered into their own
// [databases] file with their share of the connection budget), and SyncPooler
// reloads both.
type bouncerInstance struct {
	name      string // child and log component name
	mode      string // pool_mode
	port      int
	ini       string // config file in the pgbouncer dir
	pid       string // pid file in the pgbouncer dir
	databases string // [databases] include in the pgbouncer dir
	// share is this instance's part of a database's pooled connection
	// budget (the owner's limit minus 5).
	share func(budget int) int
}

func (c *Cluster) bouncerInstances() []bouncerInstance {
	return []bouncerInstance{
		{name: "pgbouncer", mode: "transaction", port: c.pooledPort, ini: "pgbouncer.ini", pid: "pgbouncer.pid",
			databases: "databases.ini", share: func(b int) int { return b - b/2 }},
		// A session-mode client holds a server connection while connected;
		// half the budget keeps it from starving the transaction pool.
		{name: "pgbouncer-session", mode: "session", port: c.sessionPort, ini: "pgbouncer-session.ini", pid: "pgbouncer-session.pid",
			databases: "databases-session.ini", share: func(b int) int { return b / 2 }},
	}
}

// newBouncerChild makes the supervised child of one instance.
func (c *Cluster) newBouncerChild(inst bouncerInstance) *child {
	ch := c.newChild(inst.name, c.bouncerBin, []string{filepath.Join(c.bouncerDir, inst.ini)}, c.bouncerDir, syscall.SIGTERM)
	// Only our own (dead) pgbouncer can have written this pid file: stale
	// ones were handled before launch. pgbouncer refuses to start if the
	// pid in it has meanwhile been reused by a live process.
	pidFile := filepath.Join(c.bouncerDir, inst.pid)
	ch.preStart = func() { os.Remove(pidFile) }
	return ch
}

// SessionPort is the session-mode pgbouncer's port.
func (c *Cluster) SessionPort() int { return c.sessionPort }

// connectConsoleOn opens the admin console of the pgbouncer on port, which
// only speaks the simple query protocol.
func (c *Cluster) connectConsoleOn(ctx context.Context, port int) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.dsn(port, "pgbouncer")+"&default_query_exec_mode=simple_protocol")
}

func (c *Cluster) pingSessionBouncer(ctx context.Context) error {
	conn, err := c.connectConsoleOn(ctx, c.sessionPort)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "SHOW VERSION")
	return err
}
