// Package schematest gives the schema-tool tests a real tenant database: a
// fresh database on the shared test cluster owned by a plain login role
// (no superuser, as in production), loaded with SQL run as that role.
package schematest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/localcluster/clustertest"
)

// Tenant is one test database and its owner.
type Tenant struct {
	DB, Role, Password string
	adminDSN           func(db string) string
}

// New creates a database owned by a new login role. Extensions listed are
// created by the superuser before the tenant loads anything (as the
// template does in production). The database and role are dropped at the
// end of the test.
func New(t testing.TB, extensions ...string) *Tenant {
	t.Helper()
	c := clustertest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suffix := strings.ToLower(ids.RandomBase62(10))
	tn := &Tenant{DB: "st_" + suffix, Role: "st_role_" + suffix, Password: ids.RandomBase62(24), adminDSN: c.AdminDSNFor}
	admin, err := pgx.Connect(ctx, c.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, s := range []string{
		fmt.Sprintf(`CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '%s'`, tn.Role, tn.Password),
		fmt.Sprintf(`CREATE DATABASE %s OWNER %s TEMPLATE template0`, tn.DB, tn.Role),
	} {
		if _, err := admin.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a, err := pgx.Connect(ctx, c.AdminDSN())
		if err != nil {
			return
		}
		defer a.Close(ctx)
		_, _ = a.Exec(ctx, `DROP DATABASE IF EXISTS `+tn.DB+` WITH (FORCE)`)
		_, _ = a.Exec(ctx, `DROP ROLE IF EXISTS `+tn.Role)
	})
	if len(extensions) > 0 {
		sa, err := pgx.Connect(ctx, c.AdminDSNFor(tn.DB))
		if err != nil {
			t.Fatal(err)
		}
		defer sa.Close(ctx)
		for _, e := range extensions {
			if _, err := sa.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS `+pgx.Identifier{e}.Sanitize()+` SCHEMA public`); err != nil {
				t.Fatalf("create extension %s: %v", e, err)
			}
		}
	}
	return tn
}

// DSN is the tenant's own URL for its database.
func (tn *Tenant) DSN() string {
	u, err := url.Parse(tn.adminDSN(tn.DB))
	if err != nil {
		panic(err)
	}
	u.User = url.UserPassword(tn.Role, tn.Password)
	return u.String()
}

// Connect opens a session as the tenant.
func (tn *Tenant) Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, tn.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs sql (several statements allowed) as the tenant.
func (tn *Tenant) Exec(t testing.TB, sql string) {
	t.Helper()
	conn := tn.Connect(t)
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("as tenant: %v\n%s", err, sql)
	}
}
