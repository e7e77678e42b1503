package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// Organization is the tenant.
type Organization struct {
	ID                    string
	Name                  string
	Slug                  string
	BillingPlan           string
	BillingEmail          *string
	ClerkOrganizationID   *string
	ClerkOrganizationSlug *string
	SuspendedAt           *time.Time
	SuspendedReason       *string
	CreatedAt             time.Time
	UpdatedAt             time.Time
}

const orgColumns = `id, name, slug, billing_plan, billing_email, clerk_organization_id,
	clerk_organization_slug, suspended_at, suspended_reason, created_at, updated_at`

func scanOrg(row pgx.Row) (*Organization, error) {
	return scanOne(row, func(o *Organization) []any {
		return []any{&o.ID, &o.Name, &o.Slug, &o.BillingPlan, &o.BillingEmail, &o.ClerkOrganizationID,
			&o.ClerkOrganizationSlug, &o.SuspendedAt, &o.SuspendedReason, &o.CreatedAt, &o.UpdatedAt}
	})
}

// InsertOrganization creates an organization.
func InsertOrganization(ctx context.Context, db DB, o *Organization) error {
	return db.QueryRow(ctx, `INSERT INTO organizations (id, name, slug, billing_plan)
		VALUES ($1, $2, $3, $4) RETURNING created_at, updated_at`,
		o.ID, o.Name, o.Slug, o.BillingPlan).Scan(&o.CreatedAt, &o.UpdatedAt)
}

// GetOrganization reads an organization by id.
func GetOrganization(ctx context.Context, db DB, id string) (*Organization, error) {
	return scanOrg(db.QueryRow(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = $1`, id))
}

// GetOrganizationByRef reads an organization by id or slug.
func GetOrganizationByRef(ctx context.Context, db DB, ref string) (*Organization, error) {
	return scanOrg(db.QueryRow(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = $1 OR slug = $1`, ref))
}

// APIKey is an API key's stored form: never the plaintext, only its hash.
type APIKey struct {
	ID              string
	OrganizationID  string
	Name            string
	KeyHash         []byte
	KeyPrefix       string
	Scopes          []string
	ProjectID       *string
	ExpiresAt       *time.Time
	DeviceName      *string
	Source          string
	CreatedByUserID *string
	LastUsedAt      *time.Time
	RevokedAt       *time.Time
	CreatedAt       time.Time
}

const keyColumns = `id, organization_id, name, key_hash, key_prefix, scopes, project_id, expires_at,
	device_name, source, created_by_user_id, last_used_at, revoked_at, created_at`

func scanKey(row pgx.Row) (*APIKey, error) {
	return scanOne(row, func(k *APIKey) []any {
		return []any{&k.ID, &k.OrganizationID, &k.Name, &k.KeyHash, &k.KeyPrefix, &k.Scopes, &k.ProjectID,
			&k.ExpiresAt, &k.DeviceName, &k.Source, &k.CreatedByUserID, &k.LastUsedAt, &k.RevokedAt, &k.CreatedAt}
	})
}

// InsertAPIKey stores a new key.
func InsertAPIKey(ctx context.Context, db DB, k *APIKey) error {
	return db.QueryRow(ctx, `INSERT INTO api_keys (id, organization_id, name, key_hash, key_prefix, scopes,
		project_id, expires_at, device_name, source, created_by_user_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at`,
		k.ID, k.OrganizationID, k.Name, k.KeyHash, k.KeyPrefix, k.Scopes, k.ProjectID, k.ExpiresAt,
		k.DeviceName, k.Source, k.CreatedByUserID).Scan(&k.CreatedAt)
}

// GetAPIKeyByHash finds a key by the SHA-256 of its plaintext.
func GetAPIKeyByHash(ctx context.Context, db DB, hash []byte) (*APIKey, error) {
	return scanKey(db.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE key_hash = $1`, hash))
}

// TouchAPIKey records use of a key, at most once a minute.
func TouchAPIKey(ctx context.Context, db DB, id string) error {
	_, err := db.Exec(ctx, `UPDATE api_keys SET last_used_at = now()
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`, id)
	return err
}

// Cluster is a Postgres server (with pgBouncer) that hosts tenant databases.
type Cluster struct {
	ID              string
	Name            string
	Provider        string
	Region          string
	PublicHost      string
	DirectPort      int
	PooledPort      int
	SessionPort     int // session-mode pgBouncer; 0 when the cluster has none
	PostgresVersion string
	State           string
	// NodeRole is the control-database login of the `capydb node` that runs
	// the cluster ("" for the embedded cluster); LastHeartbeatAt is that
	// node's last sign of life (nil: never, or the embedded cluster).
	NodeRole        string
	LastHeartbeatAt *time.Time
	CAPEM           string // the CA the cluster's server certificate chains to
	MaxProjects     int    // placement cap; 0 = none
	// ReplicaOf is the cluster this one is a hot standby of ("" for a
	// primary); FailedOverTo is the standby that took over a fenced cluster.
	ReplicaOf    string
	FailedOverTo string
	// Replication is a primary's last report of its standbys.
	Replication []ReplicationLink
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const clusterColumns = `id, name, provider, region, public_host, direct_port, pooled_port, session_port,
	postgres_version, state, coalesce(node_role, ''), last_heartbeat_at, ca_pem, max_projects,
	coalesce(replica_of, ''), coalesce(failed_over_to, ''), replication, created_at, updated_at`

func scanCluster(row pgx.Row) (*Cluster, error) {
	return scanOne(row, func(c *Cluster) []any {
		return []any{&c.ID, &c.Name, &c.Provider, &c.Region, &c.PublicHost, &c.DirectPort, &c.PooledPort, &c.SessionPort,
			&c.PostgresVersion, &c.State, &c.NodeRole, &c.LastHeartbeatAt, &c.CAPEM, &c.MaxProjects,
			&c.ReplicaOf, &c.FailedOverTo, &c.Replication, &c.CreatedAt, &c.UpdatedAt}
	})
}

// UpsertClusterByName registers a cluster or refreshes its addresses,
// keeping its id stable across restarts.
func UpsertClusterByName(ctx context.Context, db DB, c *Cluster) error {
	return db.QueryRow(ctx, `INSERT INTO clusters (id, name, provider, region, public_host, direct_port,
			pooled_port, postgres_version, state, session_port)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (name) DO UPDATE SET public_host = EXCLUDED.public_host,
			direct_port = EXCLUDED.direct_port, pooled_port = EXCLUDED.pooled_port,
			session_port = EXCLUDED.session_port,
			postgres_version = EXCLUDED.postgres_version, updated_at = now()
		RETURNING id, state, created_at, updated_at`,
		c.ID, c.Name, c.Provider, c.Region, c.PublicHost, c.DirectPort, c.PooledPort, c.PostgresVersion, c.State,
		c.SessionPort,
	).Scan(&c.ID, &c.State, &c.CreatedAt, &c.UpdatedAt)
}

// ListClusters returns every registered cluster, oldest first.
func ListClusters(ctx context.Context, db DB) ([]*Cluster, error) {
	rows, err := db.Query(ctx, `SELECT `+clusterColumns+` FROM clusters ORDER BY created_at, id`)
	return collect(rows, err, scanCluster)
}

// GetCluster reads a cluster by id.
func GetCluster(ctx context.Context, db DB, id string) (*Cluster, error) {
	return scanCluster(db.QueryRow(ctx, `SELECT `+clusterColumns+` FROM clusters WHERE id = $1`, id))
}

// Batcher is what sends several statements in one round trip (a pool, a
// connection or a transaction).
type Batcher interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// GetOrganizationAndCluster reads an organization and a cluster in one
// round trip: rendering a project needs both. The cluster is nil (and no
// error) when it does not exist.
func GetOrganizationAndCluster(ctx context.Context, db Batcher, orgID, clusterID string) (*Organization, *Cluster, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+orgColumns+` FROM organizations WHERE id = $1`, orgID)
	b.Queue(`SELECT `+clusterColumns+` FROM clusters WHERE id = $1`, clusterID)
	br := db.SendBatch(ctx, b)
	defer br.Close()
	org, err := scanOrg(br.QueryRow())
	if err != nil {
		return nil, nil, err
	}
	c, err := scanCluster(br.QueryRow())
	if errors.Is(err, ErrNotFound) {
		return org, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return org, c, br.Close()
}

// InsertEvent writes an outbox event; call it in the transaction of the state change.
func InsertEvent(ctx context.Context, db DB, id, orgID, typ string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `INSERT INTO events (id, organization_id, type, data) VALUES ($1, $2, $3, $4)`,
		id, orgID, typ, b)
	return err
}

// Event is an outbox row.
type Event struct {
	ID             string
	OrganizationID string
	Type           string
	Data           json.RawMessage
	CreatedAt      time.Time
}

// AuditEvent is an append-only record of who did what to a project.
type AuditEvent struct {
	ID             string
	OrganizationID string
	ProjectID      *string
	Action         string
	ActorKind      string
	ActorID        *string
	Metadata       map[string]any
}

// InsertAuditEvent appends to the audit log.
func InsertAuditEvent(ctx context.Context, db DB, a *AuditEvent) error {
	if a.Metadata == nil {
		a.Metadata = map[string]any{}
	}
	b, err := json.Marshal(a.Metadata)
	if err != nil {
		return err
	}
	_, err = db.Exec(ctx, `INSERT INTO audit_events (id, organization_id, project_id, action, actor_kind, actor_id, metadata)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.ID, a.OrganizationID, a.ProjectID, a.Action, a.ActorKind, a.ActorID, b)
	return err
}
