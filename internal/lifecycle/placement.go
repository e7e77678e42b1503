package lifecycle

import (
	"context"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/store"
)

// ProjectRequest is a create request as the caller sent it; CheckProjectRequest
// validates it and fills the defaults.
type ProjectRequest struct {
	Name        string
	Slug        string // "" = derive from the name
	Environment string // "" = production
}

// CheckProjectRequest validates a new project's name, slug and environment
// and returns them normalized (name trimmed, environment defaulted).
func CheckProjectRequest(in ProjectRequest) (ProjectRequest, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || utf8.RuneCountInString(in.Name) > 64 {
		return in, invalidf("name must be 1-64 characters")
	}
	if HasInvisible(in.Name) {
		return in, invalidf("name must not contain control characters or invisible format characters (bidi overrides, zero-width spaces)")
	}
	if in.Slug != "" && !ValidSlug(in.Slug) {
		return in, invalidf("slug must be 1-63 lower-case letters, digits and -, start with a letter and not end with -")
	}
	if in.Environment == "" {
		in.Environment = EnvProduction
	}
	if in.Environment != EnvProduction && in.Environment != EnvNonProduction {
		return in, invalidf("environment must be one of production or non_production")
	}
	return in, nil
}

// OfferedVersions are the majors of active clusters, oldest first (numeric order).
func (s *Service) OfferedVersions(ctx context.Context) ([]string, error) {
	clusters, err := store.ListClusters(ctx, s.Store.Pool)
	if err != nil {
		return nil, err
	}
	return offeredVersions(clusters), nil
}

func offeredVersions(clusters []*store.Cluster) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range clusters {
		if c.State == "active" && !seen[c.PostgresVersion] {
			seen[c.PostgresVersion] = true
			out = append(out, c.PostgresVersion)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i]) != len(out[j]) {
			return len(out[i]) < len(out[j])
		}
		return out[i] < out[j]
	})
	return out
}

// Place chooses the cluster for a new project: the requested one, or the
// active cluster with the fewest projects in the region and version asked
// for ("" = any region, the newest offered version).
func (s *Service) Place(ctx context.Context, region, clusterID, version string) (*store.Cluster, error) {
	clusters, err := store.ListClusters(ctx, s.Store.Pool)
	if err != nil {
		return nil, err
	}
	// Standby clusters serve their primary's projects read-only; they take
	// none of their own.
	for _, c := range clusters {
		if c.ID == clusterID && c.ReplicaOf != "" {
			return nil, invalidf("cluster %s is a standby of %s: it takes no projects of its own", clusterID, c.ReplicaOf)
		}
	}
	clusters = slices.DeleteFunc(clusters, func(c *store.Cluster) bool { return c.ReplicaOf != "" })
	versions := offeredVersions(clusters)
	if len(versions) == 0 {
		if len(clusters) > 0 {
			return nil, domainerr.New(domainerr.Conflict, "no cluster is open for new projects: every cluster is cordoned, draining or offline")
		}
		return nil, domainerr.New(domainerr.Unavailable, "no cluster is open for new projects")
	}
	if version == "" {
		version = versions[len(versions)-1]
	} else if !slices.Contains(versions, version) {
		return nil, invalidf("unsupported postgres version %q; this server offers: %s", version, strings.Join(versions, ", "))
	}
	var regions []string
	for _, c := range clusters {
		if c.State == "active" && !slices.Contains(regions, c.Region) {
			regions = append(regions, c.Region)
		}
	}
	if region != "" && !slices.Contains(regions, region) {
		return nil, invalidf("unknown region %q; available regions: %s", region, strings.Join(regions, ", "))
	}
	if clusterID != "" {
		for _, c := range clusters {
			if c.ID != clusterID {
				continue
			}
			if c.State != "active" {
				return nil, invalidf("cluster %s is not open for new projects", clusterID)
			}
			if region != "" && c.Region != region {
				return nil, invalidf("cluster %s is in region %s, not %s", clusterID, c.Region, region)
			}
			if c.PostgresVersion != version {
				return nil, invalidf("cluster %s runs postgres %s, not %s", clusterID, c.PostgresVersion, version)
			}
			return c, nil
		}
		return nil, invalidf("unknown cluster %q", clusterID)
	}
	counts, err := store.CountProjectsByCluster(ctx, s.Store.Pool)
	if err != nil {
		return nil, err
	}
	var best *store.Cluster
	for _, c := range clusters {
		if c.State != "active" || c.PostgresVersion != version || (region != "" && c.Region != region) {
			continue
		}
		if best == nil || counts[c.ID] < counts[best.ID] {
			best = c
		}
	}
	if best == nil {
		if region == "" {
			return nil, invalidf("no open cluster offers postgres %s", version)
		}
		return nil, invalidf("no open cluster offers postgres %s in region %s", version, region)
	}
	return best, nil
}

// HasInvisible reports whether s holds a Unicode control (Cc) or format (Cf)
// character: NUL and escapes, bidi overrides, zero-width spaces and joiners.
// Names with them look like other names (or reorder what is shown around them).
func HasInvisible(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf) }) >= 0
}
