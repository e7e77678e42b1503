package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
)

// fail turns a domain error into the right status. Unknown errors are logged
// and answered 500 without internals.
func (s *Server) fail(ctx context.Context, err error, notFoundMsg string) error {
	var ue *lifecycle.UserError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, "%s", notFoundMsg)
	case errors.As(err, &ue):
		switch {
		case errors.Is(ue, lifecycle.ErrConflict):
			return errorf(http.StatusConflict, "%s", ue.Msg)
		case errors.Is(ue, lifecycle.ErrForbidden):
			return errorf(http.StatusForbidden, "%s", ue.Msg)
		case errors.Is(ue, lifecycle.ErrApprovalRequired):
			return errorf(http.StatusPreconditionRequired, "%s", ue.Msg)
		default:
			return errorf(http.StatusBadRequest, "%s", ue.Msg)
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, "request timed out; try again")
	}
	s.deps.Log.ErrorContext(ctx, "request failed", "error", err)
	return errorf(http.StatusInternalServerError, "internal error")
}
