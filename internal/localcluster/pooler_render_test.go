package localcluster

import (
	"strings"
	"testing"
)

// TestRenderDatabasesPoolSettings: a project's pool_size lands on both
// pgBouncers capped by each one's max_db_connections, session mode only
// changes the transaction pgBouncer's entry, and malformed stored values
// never reach the file.
func TestRenderDatabasesPoolSettings(t *testing.T) {
	c := &Cluster{}
	insts := c.bouncerInstances()
	dbs := []tenantDB{
		{name: "a", connLimit: 60, pool: parsePoolSettings([]string{"capydb.pool_size=40", "capydb.pool_mode=session"})},
		{name: "b", connLimit: 15, pool: parsePoolSettings([]string{"capydb.pool_size=3"})},
		{name: "c", connLimit: 15, pool: parsePoolSettings([]string{"capydb.pool_size=3 host=evil", "capydb.pool_mode=statement\nx"})},
		{name: "d", connLimit: -1, pool: parsePoolSettings([]string{"capydb.pool_size=7"})},
	}
	tx := string(renderDatabases(dbs, "127.0.0.1", 5432, insts[0]))
	sess := string(renderDatabases(dbs, "127.0.0.1", 5432, insts[1]))
	for _, want := range []string{
		"a = host=127.0.0.1 port=5432 dbname=a max_db_connections=28 pool_size=28 pool_mode=session\n",
		"b = host=127.0.0.1 port=5432 dbname=b max_db_connections=5 pool_size=3\n",
		"c = host=127.0.0.1 port=5432 dbname=c max_db_connections=5\n",
		"d = host=127.0.0.1 port=5432 dbname=d pool_size=7\n",
	} {
		if !strings.Contains(tx, want) {
			t.Errorf("transaction pgbouncer: missing %q in\n%s", want, tx)
		}
	}
	for _, want := range []string{
		"a = host=127.0.0.1 port=5432 dbname=a max_db_connections=27 pool_size=27\n",
		"b = host=127.0.0.1 port=5432 dbname=b max_db_connections=5 pool_size=3\n",
	} {
		if !strings.Contains(sess, want) {
			t.Errorf("session pgbouncer: missing %q in\n%s", want, sess)
		}
	}
	if strings.Contains(tx+sess, "evil") || strings.Contains(tx+sess, "statement") {
		t.Errorf("malformed stored values reached the files:\n%s\n%s", tx, sess)
	}
}
