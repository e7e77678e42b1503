package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/store"
)

// A control database that cannot serve (a failover) is 503, not 500; other
// unknown errors stay 500 without internals.
func TestFailMapsControlDatabaseOutage(t *testing.T) {
	s := New(Deps{Log: slog.New(slog.DiscardHandler)})
	for _, c := range []struct {
		err    error
		status int
		msg    string
	}{
		{fmt.Errorf("while listing: %w", &pgconn.PgError{Code: "57P01"}), http.StatusServiceUnavailable, msgControlUnavailable},
		{&pgconn.PgError{Code: "25006"}, http.StatusServiceUnavailable, msgControlUnavailable},
		{store.ErrNotFound, http.StatusNotFound, "no such thing"},
		{errors.New("boom"), http.StatusInternalServerError, "internal error"},
	} {
		var ae *apiError
		if !errors.As(s.fail(context.Background(), c.err, "no such thing"), &ae) {
			t.Fatalf("%v: not an apiError", c.err)
		}
		if ae.status != c.status || ae.Message != c.msg {
			t.Errorf("%v: %d %q, want %d %q", c.err, ae.status, ae.Message, c.status, c.msg)
		}
	}
}
