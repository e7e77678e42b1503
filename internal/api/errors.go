package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/store"
)

// kindStatus is the one place a domain error kind becomes an HTTP status.
var kindStatus = map[domainerr.Kind]int{
	domainerr.NotFound:     http.StatusNotFound,
	domainerr.Gone:         http.StatusGone,
	domainerr.Conflict:     http.StatusConflict,
	domainerr.Invalid:      http.StatusBadRequest,
	domainerr.Forbidden:    http.StatusForbidden,
	domainerr.Precondition: http.StatusPreconditionRequired,
	domainerr.Unavailable:  http.StatusServiceUnavailable,
}

// msgControlUnavailable answers a request the control database could not
// serve (no primary reachable, e.g. during a failover).
const msgControlUnavailable = "the control database is unavailable right now; try again"

// fail turns a domain error into the right status. Unknown errors are logged
// and answered 500 without internals.
func (s *Server) fail(ctx context.Context, err error, notFoundMsg string) error {
	var de *domainerr.Error
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "%s", notFoundMsg)
	case errors.As(err, &de):
		status, ok := kindStatus[de.Kind]
		if !ok {
			status = http.StatusBadRequest
		}
		return errorf(status, "%s", de.Msg)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, "request timed out; try again")
	case store.Unavailable(err):
		// A control-database failover in progress: nothing was decided, the
		// client retries after Retry-After.
		s.deps.Log.WarnContext(ctx, "control database unavailable", "error", err)
		return errorf(http.StatusServiceUnavailable, "%s", msgControlUnavailable)
	}
	s.deps.Log.ErrorContext(ctx, "request failed", "error", err)
	return errorf(http.StatusInternalServerError, "internal error")
}
