package lifecycle

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/store"
)

// OpenProjectSession connects to a ready project's database as the project's
// own login, so read-only tools (schema, lint, advisor) hold exactly the
// tenant's rights, never the superuser's (docs/security.md).
func (s *Service) OpenProjectSession(ctx context.Context, p *store.Project, app string) (*pgx.Conn, error) {
	if p.State != store.ProjectReady {
		return nil, conflictf("project is %s, not ready", p.State)
	}
	return s.openTenantSession(ctx, p.ClusterID, p.DatabaseName, p.RoleName, p.PasswordEnc, app)
}

// OpenPreviewSession is OpenProjectSession for a ready preview database.
func (s *Service) OpenPreviewSession(ctx context.Context, pv *store.Preview, app string) (*pgx.Conn, error) {
	if pv.State != store.PreviewReady {
		return nil, conflictf("preview is %s, not ready", pv.State)
	}
	return s.openTenantSession(ctx, pv.ClusterID, pv.DatabaseName, pv.RoleName, pv.PasswordEnc, app)
}

func (s *Service) openTenantSession(ctx context.Context, clusterID, db, role string, passwordEnc []byte, app string) (*pgx.Conn, error) {
	c, err := s.Cluster(clusterID)
	if err != nil {
		return nil, err
	}
	pw, err := s.open(passwordEnc)
	if err != nil {
		return nil, fmt.Errorf("while decrypting credentials: %w", err)
	}
	return c.ConnectTenant(ctx, db, role, pw, app)
}
