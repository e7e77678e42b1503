package apiclient

import (
	"context"
	"net/http"
	"time"
)

// NetworkRestrictions is a project's allow-list (†).
type NetworkRestrictions struct {
	DBAllowedCIDRs   []string   `json:"db_allowed_cidrs"`
	DBAllowedCIDRsV6 []string   `json:"db_allowed_cidrs_v6"`
	Status           string     `json:"status"`
	AppliedAt        *time.Time `json:"applied_at"`
}

// NetworkRestrictionsRequest replaces both lists.
type NetworkRestrictionsRequest struct {
	DBAllowedCIDRs   []string `json:"db_allowed_cidrs"`
	DBAllowedCIDRsV6 []string `json:"db_allowed_cidrs_v6"`
}

// NetworkBan is an address refused after repeated failed logins (†).
type NetworkBan struct {
	Address   string    `json:"address"`
	Failures  int       `json:"failures"`
	BannedAt  time.Time `json:"banned_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// GetNetworkRestrictions is GET .../network-restrictions.
func (c *Client) GetNetworkRestrictions(ctx context.Context, projectID string) (*NetworkRestrictions, error) {
	var out struct {
		NetworkRestrictions *NetworkRestrictions `json:"network_restrictions"`
	}
	err := c.get(ctx, projectPath(projectID, "/network-restrictions"), nil, &out)
	return out.NetworkRestrictions, err
}

// PutNetworkRestrictions is PUT .../network-restrictions (a job applies it).
func (c *Client) PutNetworkRestrictions(ctx context.Context, projectID string, req NetworkRestrictionsRequest) (*NetworkRestrictions, *Job, error) {
	req.DBAllowedCIDRs, req.DBAllowedCIDRsV6 = nonNil(req.DBAllowedCIDRs), nonNil(req.DBAllowedCIDRsV6)
	var out struct {
		Job                 *Job                 `json:"job"`
		NetworkRestrictions *NetworkRestrictions `json:"network_restrictions"`
	}
	err := c.send(ctx, http.MethodPut, projectPath(projectID, "/network-restrictions"), req, &out)
	return out.NetworkRestrictions, out.Job, err
}

// ListNetworkBans is GET .../network-bans.
func (c *Client) ListNetworkBans(ctx context.Context, projectID string) ([]NetworkBan, error) {
	var out struct {
		Bans []NetworkBan `json:"bans"`
	}
	err := c.get(ctx, projectPath(projectID, "/network-bans"), nil, &out)
	return nonNil(out.Bans), err
}

// DeleteNetworkBan is DELETE .../network-bans/{address}.
func (c *Client) DeleteNetworkBan(ctx context.Context, projectID, address string) (*Job, error) {
	var out struct {
		Job *Job `json:"job"`
	}
	err := c.send(ctx, http.MethodDelete, projectPath(projectID, "/network-bans/"+seg(address)), nil, &out)
	return out.Job, err
}
