package bgsvc

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Notifier holds a LISTEN connection on Channel and signals Wake on every
// NOTIFY. Polling stays the loops' fallback: a notifier only makes them
// react sooner.
type Notifier struct {
	Pool    *pgxpool.Pool
	Channel string
	Wake    Wake
	Log     *slog.Logger
	// Listening fires each time LISTEN took effect (tests: notifications
	// sent after it are not lost).
	Listening *Signal[struct{}]
}

// retryListen is the pause before a lost LISTEN connection is reopened.
const retryListen = time.Second

// Run listens until ctx ends, reconnecting after a pause when the
// connection is lost.
func (n *Notifier) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := n.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if n.Log != nil {
			n.Log.Warn("notification listener stopped; retrying", "channel", n.Channel, "error", err)
		}
		_ = Sleep(ctx, retryListen)
	}
}

func (n *Notifier) listenOnce(ctx context.Context) error {
	conn, err := n.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+n.Channel); err != nil {
		return err
	}
	defer func() {
		// The connection goes back to the pool: stop listening on it.
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = conn.Exec(c, "UNLISTEN *")
	}()
	// Whatever was sent while nobody listened is not delivered: look once.
	n.Wake.Signal()
	n.Listening.Send(struct{}{})
	for {
		if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
			return err
		}
		n.Wake.Signal()
	}
}
