package lifecycle

import (
	"fmt"

	"github.com/capydb/capydb/internal/store"
)

// ProjectLoginDSN is the direct URL of a project's database as the project's
// current login: Studio SQL runs with the tenant's own rights.
func (s *Service) ProjectLoginDSN(p *store.Project) (string, error) {
	return s.loginDSN(p.ClusterID, p.RoleName, p.PasswordEnc, p.DatabaseName)
}

// PreviewLoginDSN is the same for a preview database and its role.
func (s *Service) PreviewLoginDSN(pv *store.Preview) (string, error) {
	return s.loginDSN(pv.ClusterID, pv.RoleName, pv.PasswordEnc, pv.DatabaseName)
}

func (s *Service) loginDSN(clusterID, role string, passwordEnc []byte, db string) (string, error) {
	c, err := s.Cluster(clusterID)
	if err != nil {
		return "", err
	}
	pw, err := s.open(passwordEnc)
	if err != nil {
		return "", fmt.Errorf("while decrypting credentials: %w", err)
	}
	return c.LoginDSN(db, role, pw)
}
