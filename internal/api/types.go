package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// Organization is the wire form of an organization.
type Organization = wire.Organization

func toOrganization(o *store.Organization) *Organization {
	return &Organization{
		ID: o.ID, Name: o.Name, Slug: o.Slug, BillingPlan: o.BillingPlan, BillingStatus: "active",
		BillingProvider: "self_hosted", BillingEmail: o.BillingEmail, ClerkOrganizationID: o.ClerkOrganizationID,
		ClerkOrganizationSlug: o.ClerkOrganizationSlug, SuspendedAt: utcp(o.SuspendedAt),
		SuspendedReason: o.SuspendedReason, CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC(),
	}
}

// Principal is the wire form of the caller.
type Principal = wire.Principal

// Project is the wire form of a project.
type Project = wire.Project

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
type ConnectionInfo = wire.ConnectionInfo

// Job is the wire form of a job.
type Job = wire.Job

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
type Cluster = wire.Cluster

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
