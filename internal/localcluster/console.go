package localcluster

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// ConsoleRows runs a SHOW command on a pgBouncer admin console (a
// simple-protocol connection to its "pgbouncer" database) and returns each
// row as column name → text, since the columns differ between versions.
func ConsoleRows(ctx context.Context, console *pgx.Conn, show string) ([]map[string]string, error) {
	rows, err := console.Query(ctx, show)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []map[string]string
	for rows.Next() {
		row := map[string]string{}
		for i, f := range rows.FieldDescriptions() {
			row[f.Name] = string(rows.RawValues()[i])
		}
		out = append(out, row)
	}
	return out, rows.Err()
}
