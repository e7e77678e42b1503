package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/capydb/capydb/internal/dataplane/studio"
	"github.com/capydb/capydb/internal/store"
)

// Studio runs a caller's SQL on a project's or preview's database, logged in
// as that database's own login (never a superuser or an agent: the tenant's
// rights are the boundary, docs/security.md), through a small session pool
// per login. The request's limits and the guard are the studio package's.

// ErrDatabaseUnreachable means a database's login URL cannot be built here
// (its cluster is not attached to this process, or its sealed password does
// not open): a retry or another server can help.
var ErrDatabaseUnreachable = errors.New("the database is not reachable from this server")

type studioState struct {
	once   sync.Once
	pools  *studio.Pools
	runner *studio.Runner
}

func (s *Service) studioParts() (*studio.Pools, *studio.Runner) {
	s.studio.once.Do(func() {
		s.studio.pools = studio.NewPools()
		s.studio.runner = &studio.Runner{Timeout: s.cfg.StudioTimeout}
	})
	return s.studio.pools, s.studio.runner
}

// StudioTimeoutMessage is the message of the time limit (408).
func (s *Service) StudioTimeoutMessage() string {
	_, r := s.studioParts()
	return r.TimeoutMessage()
}

// RunProjectSQL runs a checked plan on the project database.
func (s *Service) RunProjectSQL(ctx context.Context, p *store.Project, plan *studio.Plan) (*studio.Result, error) {
	dsn, err := s.loginDSN(p.ClusterID, p.RoleName, p.PasswordEnc, p.DatabaseName)
	if err != nil {
		return nil, err
	}
	return s.runPlan(ctx, dsn, plan)
}

// RunPreviewSQL runs a checked plan on a preview's database as its role.
func (s *Service) RunPreviewSQL(ctx context.Context, pv *store.Preview, plan *studio.Plan) (*studio.Result, error) {
	dsn, err := s.loginDSN(pv.ClusterID, pv.RoleName, pv.PasswordEnc, pv.DatabaseName)
	if err != nil {
		return nil, err
	}
	return s.runPlan(ctx, dsn, plan)
}

func (s *Service) runPlan(ctx context.Context, dsn string, plan *studio.Plan) (*studio.Result, error) {
	pools, runner := s.studioParts()
	var res *studio.Result
	err := pools.With(ctx, dsn, func(c *pgconn.PgConn) (bool, error) {
		var ok bool
		var err error
		res, ok, err = runner.Execute(ctx, c, plan)
		return ok, err
	})
	return res, err
}

// ListTables lists the project's tables and views (studio.ListTables).
func (s *Service) ListTables(ctx context.Context, p *store.Project) ([]studio.Table, error) {
	dsn, err := s.loginDSN(p.ClusterID, p.RoleName, p.PasswordEnc, p.DatabaseName)
	if err != nil {
		return nil, err
	}
	pools, _ := s.studioParts()
	var tables []studio.Table
	err = pools.With(ctx, dsn, func(c *pgconn.PgConn) (bool, error) {
		var err error
		tables, err = studio.ListTables(ctx, c)
		return err == nil, err
	})
	return tables, err
}

// TableRows reads one page of a table in primary-key order, READ ONLY;
// studio.ErrNoTable when it does not exist.
func (s *Service) TableRows(ctx context.Context, p *store.Project, schema, table string, limit, offset int) (*studio.Result, error) {
	dsn, err := s.loginDSN(p.ClusterID, p.RoleName, p.PasswordEnc, p.DatabaseName)
	if err != nil {
		return nil, err
	}
	pools, runner := s.studioParts()
	var res *studio.Result
	err = pools.With(ctx, dsn, func(c *pgconn.PgConn) (bool, error) {
		sql, err := studio.RowsQuery(ctx, c, schema, table, offset)
		if err != nil {
			return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded), err
		}
		plan, err := studio.Prepare(studio.Request{SQL: sql, MaxRows: min(max(limit, 0), studio.MaxRows), ReadOnly: true})
		if err != nil {
			return true, err
		}
		var ok bool
		res, ok, err = runner.Execute(ctx, c, plan)
		return ok, err
	})
	return res, err
}

// loginDSN is the direct URL of a database as one of its logins.
func (s *Service) loginDSN(clusterID, role string, passwordEnc []byte, db string) (string, error) {
	c, err := s.Cluster(clusterID)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrDatabaseUnreachable, err)
	}
	pw, err := s.open(passwordEnc)
	if err != nil {
		return "", fmt.Errorf("%w: while decrypting credentials: %v", ErrDatabaseUnreachable, err)
	}
	dsn, err := c.LoginDSN(db, role, pw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrDatabaseUnreachable, err)
	}
	return dsn, nil
}
