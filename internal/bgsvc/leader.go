package bgsvc

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// TryLeadTx makes this transaction the leader of the round called name when
// no other transaction is (a transaction-scoped advisory lock, released at
// commit or rollback). Every server runs the same periodic services; the
// ones that get false skip the round, so the work is never done twice.
func TryLeadTx(ctx context.Context, tx pgx.Tx, name string) (bool, error) {
	var leader bool
	err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext($1))`, name).Scan(&leader)
	return leader, err
}
