package supabase

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/capydb/capydb/internal/auth"
)

// capyNetwork is CapyDB's allow-list.
type capyNetwork struct {
	DBAllowedCIDRs   []string   `json:"db_allowed_cidrs"`
	DBAllowedCIDRsV6 []string   `json:"db_allowed_cidrs_v6"`
	Status           string     `json:"status"`
	AppliedAt        *time.Time `json:"applied_at"`
}

// NetworkConfig is NetworkRestrictionsRequest (the lists as sent, in order).
type NetworkConfig struct {
	DBAllowedCidrs   []string `json:"dbAllowedCidrs"`
	DBAllowedCidrsV6 []string `json:"dbAllowedCidrsV6"`
}

// NetworkRestrictions is NetworkRestrictionsResponse.
type NetworkRestrictions struct {
	Entitlement string         `json:"entitlement" enum:"allowed,disallowed"`
	Config      NetworkConfig  `json:"config"`
	OldConfig   *NetworkConfig `json:"old_config,omitempty"`
	Status      string         `json:"status" enum:"stored,applied"`
	AppliedAt   *string        `json:"applied_at,omitempty"`
}

func toRestrictions(n capyNetwork) NetworkRestrictions {
	out := NetworkRestrictions{Entitlement: "allowed", Status: n.Status,
		Config: NetworkConfig{DBAllowedCidrs: n.DBAllowedCIDRs, DBAllowedCidrsV6: n.DBAllowedCIDRsV6}}
	if out.Config.DBAllowedCidrs == nil {
		out.Config.DBAllowedCidrs = []string{}
	}
	if out.Config.DBAllowedCidrsV6 == nil {
		out.Config.DBAllowedCidrsV6 = []string{}
	}
	if n.AppliedAt != nil {
		s := rfc(*n.AppliedAt)
		out.AppliedAt = &s
	}
	return out
}

// ApplyNetworkInput is POST …/network-restrictions/apply.
type ApplyNetworkInput struct {
	Ref  string `path:"ref"`
	Body struct {
		_                struct{} `additionalProperties:"true"`
		DBAllowedCidrs   []string `json:"dbAllowedCidrs,omitempty" doc:"IPv4 CIDRs; absent or [] allows no IPv4 client"`
		DBAllowedCidrsV6 []string `json:"dbAllowedCidrsV6,omitempty" doc:"IPv6 CIDRs; absent or [] allows no IPv6 client"`
	}
}

// UnbanInput is DELETE …/network-bans.
type UnbanInput struct {
	Ref  string `path:"ref"`
	Body struct {
		_             struct{} `additionalProperties:"true"`
		IPv4Addresses []string `json:"ipv4_addresses" doc:"the addresses to unban"`
	}
}

func (f *Facade) registerNetwork() {
	get, post, del := http.MethodGet, http.MethodPost, http.MethodDelete
	read, write := auth.ScopeProjectsRead, auth.ScopeProjectsWrite
	register(f, Rule{OperationID: "v1-get-network-restrictions", Method: get, Path: "/v1/projects/{ref}/network-restrictions", Scope: read}, 200,
		"Get the allow-list", func(ctx context.Context, in *RefPath) (*struct{ Body NetworkRestrictions }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			var out struct {
				N capyNetwork `json:"network_restrictions"`
			}
			if err := f.call(ctx, get, "/v1/projects/"+sp.ProjectID+"/network-restrictions", nil, &out); err != nil {
				return nil, err
			}
			return &struct{ Body NetworkRestrictions }{Body: toRestrictions(out.N)}, nil
		})
	register(f, Rule{OperationID: "v1-update-network-restrictions", Method: post, Path: "/v1/projects/{ref}/network-restrictions/apply", Scope: write}, 201,
		"Replace the allow-list (both HBA files) and wait until it is applied", func(ctx context.Context, in *ApplyNetworkInput) (*struct{ Body NetworkRestrictions }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			v4, v6 := in.Body.DBAllowedCidrs, in.Body.DBAllowedCidrsV6
			if v4 == nil {
				v4 = []string{}
			}
			if v6 == nil {
				v6 = []string{}
			}
			path := "/v1/projects/" + sp.ProjectID + "/network-restrictions"
			if err := f.jobOf(ctx, http.MethodPut, path, map[string]any{"db_allowed_cidrs": v4, "db_allowed_cidrs_v6": v6}); err != nil {
				return nil, err
			}
			var out struct {
				N capyNetwork `json:"network_restrictions"`
			}
			if err := f.call(ctx, get, path, nil, &out); err != nil {
				return nil, err
			}
			return &struct{ Body NetworkRestrictions }{Body: toRestrictions(out.N)}, nil
		})
	register(f, Rule{OperationID: "v1-list-all-network-bans", Method: post, Path: "/v1/projects/{ref}/network-bans/retrieve", Scope: read}, 201,
		"List the addresses banned after repeated failed logins", func(ctx context.Context, in *RefPath) (*struct {
			Body struct {
				BannedIPv4Addresses []string `json:"banned_ipv4_addresses"`
			}
		}, error) {
			bans, err := f.bans(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			out := &struct {
				Body struct {
					BannedIPv4Addresses []string `json:"banned_ipv4_addresses"`
				}
			}{}
			out.Body.BannedIPv4Addresses = bans
			return out, nil
		})
	register(f, Rule{OperationID: "v1-delete-network-bans", Method: del, Path: "/v1/projects/{ref}/network-bans", Scope: write}, 200,
		"Unban addresses", func(ctx context.Context, in *UnbanInput) (*struct{ Body map[string]any }, error) {
			sp, err := f.project(ctx, in.Ref)
			if err != nil {
				return nil, err
			}
			for _, a := range in.Body.IPv4Addresses {
				if err := f.jobOf(ctx, del, "/v1/projects/"+sp.ProjectID+"/network-bans/"+url.PathEscape(a), nil); err != nil {
					return nil, err
				}
			}
			return &struct{ Body map[string]any }{Body: map[string]any{}}, nil
		})
}

func (f *Facade) bans(ctx context.Context, ref string) ([]string, error) {
	sp, err := f.project(ctx, ref)
	if err != nil {
		return nil, err
	}
	var out struct {
		Bans []struct {
			Address string `json:"address"`
		} `json:"bans"`
	}
	if err := f.call(ctx, http.MethodGet, "/v1/projects/"+sp.ProjectID+"/network-bans", nil, &out); err != nil {
		return nil, err
	}
	list := []string{}
	for _, b := range out.Bans {
		list = append(list, b.Address)
	}
	return list, nil
}
