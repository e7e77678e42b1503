package clustertest

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/localcluster"
)

// Source is a database on a cluster of its own that runs with
// wal_level=logical: the outside server a follow import copies from.
type Source struct {
	Cluster *localcluster.Cluster
	// URL logs in as the database's owner, which may replicate
	// (REPLICATION) but is no superuser, like a managed provider's login.
	URL  string
	Role string
	DB   string
}

// LogicalSource starts a second real cluster with LogicalReplication on,
// creates role and database app (owned by the role) on it, and stops it
// when tb ends.
func LogicalSource(tb testing.TB) *Source {
	tb.Helper()
	c, stop, err := StartWith(func(cfg *localcluster.Config) { cfg.LogicalReplication = true })
	if err != nil {
		tb.Fatalf("clustertest: the logical source did not start: %v", err)
	}
	tb.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const role, db, password = "app", "app", "app-source-password"
	for _, sql := range []string{
		`CREATE ROLE ` + ident(role) + ` LOGIN REPLICATION PASSWORD '` + password + `'`,
		`CREATE DATABASE ` + ident(db) + ` OWNER ` + ident(role),
	} {
		if err := adminExec(ctx, c, sql); err != nil {
			tb.Fatalf("clustertest: preparing the logical source: %v", err)
		}
	}
	u := url.URL{Scheme: "postgresql", User: url.UserPassword(role, password),
		Host: "127.0.0.1:" + strconv.Itoa(c.DirectPort()), Path: "/" + db, RawQuery: "sslmode=require"}
	return &Source{Cluster: c, URL: u.String(), Role: role, DB: db}
}

// Admin connects to the source's database as the cluster's superuser.
func (s *Source) Admin(tb testing.TB) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), s.Cluster.AdminDSNFor(s.DB))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
