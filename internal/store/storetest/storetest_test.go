package storetest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
	"github.com/capydb/capydb/internal/store/storetest"
)

func TestMain(m *testing.M) { clustertest.Main(m) }

// ControlDB hands each caller its own migrated database, copied from the
// template, and drops it when the test ends.
func TestControlDB(t *testing.T) {
	ctx := context.Background()
	var names []string
	t.Run("copies", func(t *testing.T) {
		for range 2 {
			st := storetest.ControlDB(t, 2)
			var name string
			var migrated bool
			if err := st.Pool.QueryRow(ctx, `SELECT current_database(),
				to_regclass('organizations') IS NOT NULL AND to_regclass('jobs') IS NOT NULL`).Scan(&name, &migrated); err != nil {
				t.Fatal(err)
			}
			if !migrated || name == storetest.TemplateDB {
				t.Fatalf("database %s (migrated %v), want a migrated copy of the template", name, migrated)
			}
			names = append(names, name)
		}
		if names[0] == names[1] {
			t.Fatalf("two calls shared database %s", names[0])
		}
	})
	conn, err := pgx.Connect(ctx, clustertest.Shared(t).AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = ANY($1)`, names).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d of %v left behind after the test (%v)", left, names, err)
	}
}
