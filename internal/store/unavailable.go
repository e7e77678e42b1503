package store

import (
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err means the control database cannot serve
// right now rather than that the request was wrong: no connection could be
// made, the connection died under the statement, or the server we reached is
// shutting down, starting up or is a standby (a Patroni failover in progress).
// Callers answer 503 with Retry-After; a retry after the failover succeeds.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03", // admin/crash shutdown, cannot connect now
			"25006",                   // read-only transaction: we reached a standby
			"08000", "08003", "08006", // connection exceptions
			"08001", "08004": // cannot establish, rejected
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	// A connection that died mid-statement surfaces as an EOF without a
	// SQLSTATE; pgx marks errors that happened before anything was sent as
	// safe to retry.
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || pgconn.SafeToRetry(err)
}
