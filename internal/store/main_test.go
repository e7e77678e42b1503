package store

import (
	"context"
	"testing"

	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// One real Postgres cluster for the package's tests, internal and external;
// every test gets its own control database (testStore here, and
// storetest.ControlDB in package store_test).
func TestMain(m *testing.M) { clustertest.Main(m) }

// testStore gives the test its own migrated control database, copied from
// the template that storetest.ControlDB also uses (storetest imports store,
// so this package's own tests cannot import it).
func testStore(t *testing.T) *Store {
	t.Helper()
	dsn := clustertest.TemplateCopy(t, "capydb_test_template", func(ctx context.Context, dsn string) error {
		st, err := Open(ctx, dsn, 2)
		if err != nil {
			return err
		}
		defer st.Close()
		return st.Migrate(ctx)
	})
	st, err := Open(context.Background(), dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}
