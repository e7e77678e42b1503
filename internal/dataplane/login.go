package dataplane

import (
	"fmt"
	"net/url"
)

// LoginDSN is the cluster's direct URL for db logged in as a tenant's own
// login (Studio runs a request with exactly the tenant's rights, never the
// superuser's: docs/security.md).
func (c *Cluster) LoginDSN(db, login, password string) (string, error) {
	u, err := url.Parse(c.dsnFor(db))
	if err != nil {
		return "", fmt.Errorf("while reading the cluster DSN: %w", err)
	}
	if IsAgentRole(login) {
		return "", fmt.Errorf("refusing to log in as agent role %s", login)
	}
	u.User = url.UserPassword(login, password)
	return u.String(), nil
}
