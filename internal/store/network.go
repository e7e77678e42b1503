package store

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
)

// Network statuses: stored until the apply job finished, then applied.
const (
	NetworkStored  = "stored"
	NetworkApplied = "applied"
)

// ProjectNetwork is a project's allow-list as the owner sent it.
type ProjectNetwork struct {
	ProjectID      string
	AllowedCIDRs   []string
	AllowedCIDRsV6 []string
	Plaintext      bool
	Status         string
	AppliedAt      *time.Time
	UpdatedAt      time.Time
}

// GetProjectNetwork returns ErrNotFound when the project has no list (allow all).
func GetProjectNetwork(ctx context.Context, db DB, projectID string) (*ProjectNetwork, error) {
	n := &ProjectNetwork{ProjectID: projectID}
	err := db.QueryRow(ctx, `SELECT allowed_cidrs, allowed_cidrs_v6, plaintext, status, applied_at, updated_at
		FROM project_networks WHERE project_id = $1`, projectID).
		Scan(&n.AllowedCIDRs, &n.AllowedCIDRsV6, &n.Plaintext, &n.Status, &n.AppliedAt, &n.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return n, err
}

// PutProjectNetwork stores a new allow-list (status stored).
func PutProjectNetwork(ctx context.Context, db DB, projectID string, v4, v6 []string) (time.Time, error) {
	var at time.Time
	err := db.QueryRow(ctx, `INSERT INTO project_networks (project_id, allowed_cidrs, allowed_cidrs_v6, status)
		VALUES ($1, $2, $3, 'stored')
		ON CONFLICT (project_id) DO UPDATE SET allowed_cidrs = $2, allowed_cidrs_v6 = $3, status = 'stored', updated_at = now()
		RETURNING updated_at`, projectID, nonNil(v4), nonNil(v6)).Scan(&at)
	return at, err
}

// SetProjectPlaintext records whether a project accepts clients without
// TLS (effective only with the operator's --allow-plaintext); an apply job
// must follow.
func SetProjectPlaintext(ctx context.Context, db DB, projectID string, plaintext bool) error {
	_, err := db.Exec(ctx, `INSERT INTO project_networks (project_id, allowed_cidrs, allowed_cidrs_v6, plaintext, status)
		VALUES ($1, '{0.0.0.0/0}', '{::/0}', $2, 'stored')
		ON CONFLICT (project_id) DO UPDATE SET plaintext = $2, status = 'stored', updated_at = now()`, projectID, plaintext)
	return err
}

// MarkNetworkApplied sets status applied unless the list changed after
// the apply job was queued (a newer job will mark it).
func MarkNetworkApplied(ctx context.Context, db DB, projectID string, queuedAt time.Time) error {
	_, err := db.Exec(ctx, `UPDATE project_networks SET status = 'applied', applied_at = now()
		WHERE project_id = $1 AND updated_at <= $2`, projectID, queuedAt)
	return err
}

// NetworkRow is one live project's rules on a cluster.
type NetworkRow struct {
	ProjectID  string
	Database   string
	Restricted bool
	V4, V6     []string
	Plaintext  bool
	Bans       []netip.Addr
}

// ClusterNetwork lists the rules of every live project on a cluster that
// has a list or an unexpired ban, and the same rules again for each of
// their live previews' databases.
func ClusterNetwork(ctx context.Context, db DB, clusterID string) ([]NetworkRow, error) {
	rows, err := db.Query(ctx, `
		WITH ruled AS (
			SELECT p.id, p.database_name, n.project_id IS NOT NULL AS restricted,
			       coalesce(n.allowed_cidrs, '{}') AS v4, coalesce(n.allowed_cidrs_v6, '{}') AS v6,
			       coalesce(n.plaintext, false) AS plaintext,
			       coalesce((SELECT array_agg(host(b.address) ORDER BY b.address) FROM network_bans b
			                 WHERE b.project_id = p.id AND b.expires_at > now()), '{}') AS bans
			FROM projects p LEFT JOIN project_networks n ON n.project_id = p.id
			WHERE p.cluster_id = $1 AND p.deleted_at IS NULL
			  AND (n.project_id IS NOT NULL OR EXISTS (SELECT 1 FROM network_bans b WHERE b.project_id = p.id AND b.expires_at > now())))
		SELECT id, database_name, restricted, v4, v6, plaintext, bans FROM ruled
		UNION ALL
		SELECT r.id, pv.database_name, r.restricted, r.v4, r.v6, r.plaintext, r.bans
		FROM ruled r JOIN preview_databases pv ON pv.project_id = r.id AND pv.deleted_at IS NULL AND pv.cluster_id = $1
		ORDER BY 2`, clusterID)
	if err != nil {
		return nil, err
	}
	var out []NetworkRow
	var r NetworkRow
	var bans []string
	_, err = pgx.ForEachRow(rows, []any{&r.ProjectID, &r.Database, &r.Restricted, &r.V4, &r.V6, &r.Plaintext, &bans}, func() error {
		row := r
		row.Bans = nil
		for _, b := range bans {
			if a, err := netip.ParseAddr(b); err == nil {
				row.Bans = append(row.Bans, a)
			}
		}
		out = append(out, row)
		return nil
	})
	return out, err
}

// HasNetworkRules reports whether a project has a list or an unexpired ban.
func HasNetworkRules(ctx context.Context, db DB, projectID string) (bool, error) {
	var has bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM project_networks WHERE project_id = $1)
		OR EXISTS (SELECT 1 FROM network_bans WHERE project_id = $1 AND expires_at > now())`, projectID).Scan(&has)
	return has, err
}

// Ban is an address refused for a project until ExpiresAt.
type Ban struct {
	Address   netip.Addr
	Failures  int
	BannedAt  time.Time
	ExpiresAt time.Time
}

// InsertBan bans addr from a project until expires (extending a ban).
func InsertBan(ctx context.Context, db DB, projectID string, addr netip.Addr, failures int, expires time.Time) error {
	_, err := db.Exec(ctx, `INSERT INTO network_bans (project_id, address, failures, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (project_id, address) DO UPDATE SET failures = $3, banned_at = now(), expires_at = $4`,
		projectID, addr, failures, expires)
	return err
}

// ListBans returns a project's unexpired bans, oldest first.
func ListBans(ctx context.Context, db DB, projectID string) ([]Ban, error) {
	rows, err := db.Query(ctx, `SELECT host(address), failures, banned_at, expires_at FROM network_bans
		WHERE project_id = $1 AND expires_at > now() ORDER BY banned_at, address`, projectID)
	if err != nil {
		return nil, err
	}
	out := []Ban{}
	var b Ban
	var addr string
	_, err = pgx.ForEachRow(rows, []any{&addr, &b.Failures, &b.BannedAt, &b.ExpiresAt}, func() error {
		a, perr := netip.ParseAddr(addr)
		if perr != nil {
			return perr
		}
		b.Address = a
		out = append(out, b)
		return nil
	})
	return out, err
}

// DeleteBan lifts a ban; ErrNotFound when the address is not banned.
func DeleteBan(ctx context.Context, db DB, projectID string, addr netip.Addr) error {
	tag, err := db.Exec(ctx, `DELETE FROM network_bans WHERE project_id = $1 AND address = $2 AND expires_at > now()`, projectID, addr)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteExpiredBans removes bans that ran out and returns their cluster ids.
func DeleteExpiredBans(ctx context.Context, db DB) ([]string, error) {
	rows, err := db.Query(ctx, `WITH gone AS (DELETE FROM network_bans WHERE expires_at <= now() RETURNING project_id)
		SELECT DISTINCT p.cluster_id FROM gone JOIN projects p ON p.id = gone.project_id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ProjectIDByDatabase finds the live project owning a database (its own or
// a preview's) on a cluster.
func ProjectIDByDatabase(ctx context.Context, db DB, clusterID, database string) (string, error) {
	var id string
	err := db.QueryRow(ctx, `SELECT id FROM projects WHERE cluster_id = $1 AND database_name = $2 AND deleted_at IS NULL
		UNION ALL
		SELECT project_id FROM preview_databases WHERE cluster_id = $1 AND database_name = $2 AND deleted_at IS NULL
		LIMIT 1`, clusterID, database).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	return id, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
