package api

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/netrules"
	"github.com/capydb/capydb/internal/store"
)

// NetworkRestrictions is a project's allow-list, echoed as stored.
type NetworkRestrictions struct {
	DBAllowedCIDRs   []string   `json:"db_allowed_cidrs" doc:"IPv4 networks that may connect; [\"0.0.0.0/0\"] by default"`
	DBAllowedCIDRsV6 []string   `json:"db_allowed_cidrs_v6" doc:"IPv6 networks that may connect; [\"::/0\"] by default"`
	Status           string     `json:"status" enum:"stored,applied" doc:"applied once the apply job finished"`
	AppliedAt        *time.Time `json:"applied_at" doc:"when the list was last applied; null for the default"`
}

// NetworkRestrictionsOutput is {network_restrictions}.
type NetworkRestrictionsOutput struct {
	Body struct {
		NetworkRestrictions NetworkRestrictions `json:"network_restrictions"`
	}
}

// NetworkRestrictionsBody is the new allow-list.
type NetworkRestrictionsBody struct {
	DBAllowedCIDRs   []string `json:"db_allowed_cidrs" required:"true" maxItems:"100" doc:"IPv4 CIDRs (e.g. 203.0.113.0/24); [] allows no IPv4 client"`
	DBAllowedCIDRsV6 []string `json:"db_allowed_cidrs_v6" required:"true" maxItems:"100" doc:"IPv6 CIDRs (e.g. 2001:db8::/32); [] allows no IPv6 client"`
}

// PutNetworkRestrictionsInput replaces the allow-list.
type PutNetworkRestrictionsInput struct {
	ProjectID string `path:"projectID"`
	Body      NetworkRestrictionsBody
}

// NetworkRestrictionsJobOutput is {job, network_restrictions}.
type NetworkRestrictionsJobOutput struct {
	Body struct {
		Job                 *Job                `json:"job"`
		NetworkRestrictions NetworkRestrictions `json:"network_restrictions"`
	}
}

// NetworkBan is an address refused after repeated failed logins.
type NetworkBan struct {
	Address   string    `json:"address"`
	Failures  int       `json:"failures" doc:"failed logins that led to the ban"`
	BannedAt  time.Time `json:"banned_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NetworkBansOutput is {bans}.
type NetworkBansOutput struct {
	Body struct {
		Bans []NetworkBan `json:"bans"`
	}
}

// UnbanInput is DELETE …/network-bans/{address}.
type UnbanInput struct {
	ProjectID string `path:"projectID"`
	Address   string `path:"address" doc:"the banned IPv4 or IPv6 address"`
}

func (s *Server) registerNetwork() {
	tags := []string{"network"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getNetworkRestrictions", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/network-restrictions", Scope: auth.ScopeProjectsRead},
		Summary:     "Get a project's network allow-list",
		Description: "† (self-hosted addition) The IPv4 and IPv6 networks that may log in to the project's database on the direct and pooled ports, as stored.",
		Tags:        tags}, s.getNetworkRestrictions)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "putNetworkRestrictions", Method: http.MethodPut,
		Path: "/v1/projects/{projectID}/network-restrictions", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary: "Replace a project's network allow-list",
		Description: "† (self-hosted addition) Replaces both lists (at most 100 CIDRs together, host bits zero) and queues " +
			"`project.apply_network`, which rewrites pg_hba.conf and pgBouncer's HBA file and ends sessions from addresses no longer allowed.",
		Tags: tags}, s.putNetworkRestrictions)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listNetworkBans", Method: http.MethodGet,
		Path: "/v1/projects/{projectID}/network-bans", Scope: auth.ScopeProjectsRead},
		Summary:     "List addresses banned from a project",
		Description: "† (self-hosted addition) Addresses refused on every port after repeated failed logins (`--ban-threshold` within `--ban-window`), until `expires_at`.",
		Tags:        tags}, s.listNetworkBans)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "deleteNetworkBan", Method: http.MethodDelete,
		Path: "/v1/projects/{projectID}/network-bans/{address}", Scope: auth.ScopeProjectsWrite}, Status: http.StatusAccepted,
		Summary:     "Lift a ban",
		Description: "† (self-hosted addition) Lifts the ban on one address and queues `project.apply_network`. 404 when the address is not banned.",
		Tags:        tags}, s.deleteNetworkBan)
}

func toNetworkRestrictions(n *store.ProjectNetwork) NetworkRestrictions {
	if n == nil {
		d := netrules.AllowAll()
		return NetworkRestrictions{DBAllowedCIDRs: d.V4, DBAllowedCIDRsV6: d.V6, Status: store.NetworkApplied}
	}
	out := NetworkRestrictions{DBAllowedCIDRs: n.AllowedCIDRs, DBAllowedCIDRsV6: n.AllowedCIDRsV6, Status: n.Status}
	out.AppliedAt = utcp(n.AppliedAt)
	return out
}

func (s *Server) getNetworkRestrictions(ctx context.Context, in *ProjectPath) (*NetworkRestrictionsOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	n, err := store.GetProjectNetwork(ctx, s.deps.Store.Pool, p.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, s.fail(ctx, err, "")
	}
	out := &NetworkRestrictionsOutput{}
	out.Body.NetworkRestrictions = toNetworkRestrictions(n)
	return out, nil
}

func (s *Server) putNetworkRestrictions(ctx context.Context, in *PutNetworkRestrictionsInput) (*NetworkRestrictionsJobOutput, error) {
	l := netrules.Lists{V4: in.Body.DBAllowedCIDRs, V6: in.Body.DBAllowedCIDRsV6}
	if l.V4 == nil || l.V6 == nil {
		return nil, errorf(http.StatusBadRequest, "send both db_allowed_cidrs and db_allowed_cidrs_v6 ([] allows none of that family)")
	}
	if _, err := netrules.Validate(l); err != nil {
		return nil, errorf(http.StatusBadRequest, "%s", err.Error())
	}
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.SetNetworkRestrictions(ctx, p.OrganizationID, p.ID, l, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	n, err := store.GetProjectNetwork(ctx, s.deps.Store.Pool, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "project not found")
	}
	out := &NetworkRestrictionsJobOutput{}
	out.Body.Job = toJob(job)
	out.Body.NetworkRestrictions = toNetworkRestrictions(n)
	return out, nil
}

func (s *Server) listNetworkBans(ctx context.Context, in *ProjectPath) (*NetworkBansOutput, error) {
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	bans, err := store.ListBans(ctx, s.deps.Store.Pool, p.ID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &NetworkBansOutput{}
	out.Body.Bans = []NetworkBan{}
	for _, b := range bans {
		out.Body.Bans = append(out.Body.Bans, NetworkBan{Address: b.Address.String(), Failures: b.Failures,
			BannedAt: b.BannedAt.UTC(), ExpiresAt: b.ExpiresAt.UTC()})
	}
	return out, nil
}

func (s *Server) deleteNetworkBan(ctx context.Context, in *UnbanInput) (*JobOutput, error) {
	addr, err := netip.ParseAddr(in.Address)
	if err != nil || addr.Zone() != "" {
		return nil, errorf(http.StatusBadRequest, "address %q is not an IPv4 or IPv6 address", in.Address)
	}
	p, _, err := s.loadProject(ctx, in.ProjectID)
	if err != nil {
		return nil, err
	}
	job, err := s.deps.Lifecycle.Unban(ctx, p.OrganizationID, p.ID, addr, actor(ctx))
	if err != nil {
		return nil, s.fail(ctx, err, "address "+addr.Unmap().String()+" is not banned from this project")
	}
	out := &JobOutput{}
	out.Body.Job = toJob(job)
	return out, nil
}
