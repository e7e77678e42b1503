package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
)

// Organization is the wire form of an organization.
type Organization struct {
	ID                    string     `json:"id"`
	Name                  string     `json:"name"`
	Slug                  string     `json:"slug"`
	BillingPlan           string     `json:"billing_plan"`
	BillingStatus         string     `json:"billing_status"`
	BillingProvider       string     `json:"billing_provider"`
	BillingEmail          *string    `json:"billing_email,omitempty"`
	ClerkOrganizationID   *string    `json:"clerk_organization_id,omitempty"`
	ClerkOrganizationSlug *string    `json:"clerk_organization_slug,omitempty"`
	SuspendedAt           *time.Time `json:"suspended_at,omitempty"`
	SuspendedReason       *string    `json:"suspended_reason,omitempty"`
	CreatedAt             time.Time  `json:"created_at"`
	UpdatedAt             time.Time  `json:"updated_at"`
}

func toOrganization(o *store.Organization) *Organization {
	return &Organization{
		ID: o.ID, Name: o.Name, Slug: o.Slug, BillingPlan: o.BillingPlan, BillingStatus: "active",
		BillingProvider: "self_hosted", BillingEmail: o.BillingEmail, ClerkOrganizationID: o.ClerkOrganizationID,
		ClerkOrganizationSlug: o.ClerkOrganizationSlug, SuspendedAt: utcp(o.SuspendedAt),
		SuspendedReason: o.SuspendedReason, CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC(),
	}
}

// Principal is the wire form of the caller.
type Principal struct {
	AuthSource     string   `json:"auth_source"`
	OrganizationID string   `json:"organization_id,omitempty"`
	Scopes         []string `json:"scopes"`
	IsAdmin        bool     `json:"is_admin"`
	UserID         string   `json:"user_id,omitempty"`
	Role           string   `json:"role,omitempty"`
	APIKeyID       string   `json:"api_key_id,omitempty"`
	ProjectID      string   `json:"project_id,omitempty"`
	// Sessions: the issuer's organization claims as sent.
	ClerkOrganizationID   string `json:"clerk_organization_id,omitempty"`
	ClerkOrganizationRole string `json:"clerk_organization_role,omitempty"`
	ClerkOrganizationSlug string `json:"clerk_organization_slug,omitempty"`
}

// Project is the wire form of a project.
type Project struct {
	ID                     string    `json:"id"`
	OrganizationID         string    `json:"organization_id"`
	Name                   string    `json:"name"`
	Slug                   string    `json:"slug"`
	Environment            string    `json:"environment"`
	AlwaysOn               bool      `json:"always_on"`
	State                  string    `json:"state"`
	RuntimeStatus          string    `json:"runtime_status,omitempty"`
	Plan                   string    `json:"plan"`
	Region                 string    `json:"region"`
	ClusterID              string    `json:"cluster_id,omitempty"`
	PostgresVersion        string    `json:"postgres_version,omitempty"`
	PostgresChannel        string    `json:"postgres_channel,omitempty"`
	DatabaseName           string    `json:"database_name"`
	RoleName               string    `json:"role_name"`
	PublicHost             string    `json:"public_host,omitempty"`
	DirectPort             int       `json:"direct_port"`
	PooledPort             int       `json:"pooled_port"`
	SSLMode                string    `json:"ssl_mode,omitempty"`
	MaxConnections         int       `json:"max_connections"`
	StatementTimeout       string    `json:"statement_timeout"`
	IdleTransactionTimeout string    `json:"idle_transaction_timeout"`
	StorageLimitBytes      int64     `json:"storage_limit_bytes"`
	LatestJobID            *string   `json:"latest_job_id,omitempty"`
	LastError              *string   `json:"last_error,omitempty"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
}

func toProject(p *store.Project, org *store.Organization, c *store.Cluster) *Project {
	limits := lifecycle.PlanFor(org)
	out := &Project{
		ID: p.ID, OrganizationID: p.OrganizationID, Name: p.Name, Slug: p.Slug, Environment: p.Environment,
		AlwaysOn: p.AlwaysOn, State: p.State, Plan: limits.Name, ClusterID: p.ClusterID,
		PostgresVersion: p.PostgresVersion, PostgresChannel: "stable", DatabaseName: p.DatabaseName,
		RoleName: p.RoleName, SSLMode: "require", MaxConnections: limits.MaxConnections,
		StatementTimeout: limits.StatementTimeout, IdleTransactionTimeout: limits.IdleTransactionTimeout,
		StorageLimitBytes: limits.StorageLimitBytes, LatestJobID: p.LatestJobID, LastError: p.LastError,
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
	if p.Provisioned && p.State != store.ProjectDeleting {
		out.RuntimeStatus = "active"
	}
	if c != nil {
		out.Region, out.PublicHost, out.DirectPort, out.PooledPort = c.Region, c.PublicHost, c.DirectPort, c.PooledPort
	}
	return out
}

// ConnectionInfo is the wire form of a project's URLs.
type ConnectionInfo struct {
	Username  string `json:"username"`
	DirectURL string `json:"direct_url,omitempty"`
	PooledURL string `json:"pooled_url,omitempty"`
}

// Job is the wire form of a job.
type Job struct {
	ID                  string          `json:"id"`
	Type                string          `json:"type"`
	State               string          `json:"state"`
	OrganizationID      string          `json:"organization_id"`
	ProjectID           *string         `json:"project_id,omitempty"`
	PreviewDatabaseID   *string         `json:"preview_database_id,omitempty"`
	ClusterID           *string         `json:"cluster_id,omitempty"`
	Attempts            int             `json:"attempts"`
	MaxAttempts         int             `json:"max_attempts"`
	RetryClassification string          `json:"retry_classification"`
	Error               *string         `json:"error,omitempty"`
	LastExitCode        *int            `json:"last_exit_code,omitempty"`
	LastStdout          *string         `json:"last_stdout,omitempty"`
	LastStderr          *string         `json:"last_stderr,omitempty"`
	LockedResource      *string         `json:"locked_resource,omitempty"`
	ClaimedBy           *string         `json:"claimed_by,omitempty"`
	ClaimedAt           *time.Time      `json:"claimed_at,omitempty"`
	StartedAt           *time.Time      `json:"started_at,omitempty"`
	CompletedAt         *time.Time      `json:"completed_at,omitempty"`
	Result              json.RawMessage `json:"result,omitempty"`
	Progress            json.RawMessage `json:"progress,omitempty"`
	CreatedAt           time.Time       `json:"created_at"`
	UpdatedAt           time.Time       `json:"updated_at"`
}

func toJob(j *queue.Job) *Job {
	return &Job{
		ID: j.ID, Type: j.Type, State: j.State, OrganizationID: j.OrganizationID, ProjectID: j.ProjectID,
		PreviewDatabaseID: j.PreviewDatabaseID, ClusterID: j.ClusterID, Attempts: j.Attempts,
		MaxAttempts: j.MaxAttempts, RetryClassification: j.RetryClassification, Error: j.Error,
		LastExitCode: j.LastExitCode, LastStdout: j.LastStdout, LastStderr: j.LastStderr,
		LockedResource: j.LockedResource, ClaimedBy: j.ClaimedBy, ClaimedAt: utcp(j.ClaimedAt),
		StartedAt: utcp(j.StartedAt), CompletedAt: utcp(j.CompletedAt), Result: j.Result,
		Progress: j.Progress, CreatedAt: j.CreatedAt.UTC(), UpdatedAt: j.UpdatedAt.UTC(),
	}
}

// Cluster is the wire form of a cluster.
type Cluster struct {
	ID                          string   `json:"id"`
	Name                        string   `json:"name"`
	Provider                    string   `json:"provider"`
	Region                      string   `json:"region"`
	PublicHost                  string   `json:"public_host"`
	DirectPort                  int      `json:"direct_port"`
	PooledPort                  int      `json:"pooled_port"`
	PostgresVersion             string   `json:"postgres_version"`
	Extensions                  []string `json:"extensions"`
	State                       string   `json:"state"`
	SupportsPointInTimeRecovery bool     `json:"supports_point_in_time_recovery"`
	BackupStorage               string   `json:"backup_storage,omitempty"`
}

func utcp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
