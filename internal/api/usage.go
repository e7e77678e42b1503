package api

import (
	"context"
	"net/http"
	"net/mail"
	"time"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// NotificationPreferences and OrganizationUsage are API.md §4.16 and §4.2.
type (
	NotificationPreferences           = wire.NotificationPreferences
	PutNotificationPreferencesRequest = wire.PutNotificationPreferencesRequest
	OrganizationUsage                 = wire.OrganizationUsage
)

// NotificationPreferencesOutput is {notification_preferences}.
type NotificationPreferencesOutput struct {
	Body struct {
		NotificationPreferences *NotificationPreferences `json:"notification_preferences"`
	}
}

// PutNotificationPreferencesInput wraps the replacement.
type PutNotificationPreferencesInput struct {
	OrgID string `path:"orgID"`
	Body  PutNotificationPreferencesRequest
}

// UsageOutput is {usage}.
type UsageOutput struct {
	Body struct {
		Usage *OrganizationUsage `json:"usage"`
	}
}

// maxRecipients bounds each recipient list (PRODUCT.md §21.4).
const maxRecipients = 10

func toNotificationPreferences(p *store.NotificationPreferences) *NotificationPreferences {
	return &NotificationPreferences{OrganizationID: p.OrganizationID, AlertEmailsEnabled: p.AlertEmailsEnabled,
		AlertEmailRecipients: p.AlertEmailRecipients, BillingEmailRecipients: p.BillingEmailRecipients,
		UpdatedAt: utcp(p.UpdatedAt)}
}

func (s *Server) registerUsage() {
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getOrganizationUsage", Method: http.MethodGet,
		Path: "/v1/organizations/{orgID}/usage", Scope: auth.ScopeOrganizationsRead, OrgKeyOnly: true},
		Summary: "Usage totals, per project, and 30 days of storage history", Tags: []string{"organizations"}},
		s.getUsage)
	tags := []string{"notifications"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getNotificationPreferences", Method: http.MethodGet,
		Path: "/v1/organizations/{orgID}/notification-preferences", Scope: auth.ScopeOrganizationsRead, OrgKeyOnly: true},
		Summary: "Get the organization's notification preferences (defaults when never saved)", Tags: tags},
		func(ctx context.Context, _ *OrgPath) (*NotificationPreferencesOutput, error) {
			p, err := store.GetNotificationPreferences(ctx, s.deps.Store.Pool, principal(ctx).OrganizationID)
			if err != nil {
				return nil, s.fail(ctx, err, "")
			}
			out := &NotificationPreferencesOutput{}
			out.Body.NotificationPreferences = toNotificationPreferences(p)
			return out, nil
		})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "putNotificationPreferences", Method: http.MethodPut,
		Path:  "/v1/organizations/{orgID}/notification-preferences",
		Scope: auth.ScopeOrganizationsWrite, OrgKeyOnly: true, AdminOnly: true},
		Summary: "Replace the organization's notification preferences", Tags: tags, Status: http.StatusOK},
		func(ctx context.Context, in *PutNotificationPreferencesInput) (*NotificationPreferencesOutput, error) {
			b := in.Body
			for field, list := range map[string][]string{"alert_email_recipients": b.AlertEmailRecipients,
				"billing_email_recipients": b.BillingEmailRecipients} {
				if list == nil {
					return nil, errorf(http.StatusBadRequest, "%s is required (send [] to clear it)", field)
				}
				if len(list) > maxRecipients {
					return nil, errorf(http.StatusBadRequest, "%s holds at most %d addresses", field, maxRecipients)
				}
				for _, addr := range list {
					if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr {
						return nil, errorf(http.StatusBadRequest, "%s: %q is not an e-mail address such as ops@example.com", field, addr)
					}
				}
			}
			p, err := store.PutNotificationPreferences(ctx, s.deps.Store.Pool, &store.NotificationPreferences{
				OrganizationID: principal(ctx).OrganizationID, AlertEmailsEnabled: b.AlertEmailsEnabled,
				AlertEmailRecipients: b.AlertEmailRecipients, BillingEmailRecipients: b.BillingEmailRecipients})
			if err != nil {
				return nil, s.fail(ctx, err, "")
			}
			out := &NotificationPreferencesOutput{}
			out.Body.NotificationPreferences = toNotificationPreferences(p)
			return out, nil
		})
}

// usageDays is the length of the storage history.
const usageDays = 30

func (s *Server) getUsage(ctx context.Context, _ *OrgPath) (*UsageOutput, error) {
	orgID := principal(ctx).OrganizationID
	org, err := store.GetOrganization(ctx, s.deps.Store.Pool, orgID)
	if err != nil {
		return nil, s.fail(ctx, err, "organization not found")
	}
	rows, err := store.OrganizationUsageRows(ctx, s.deps.Store.Pool, orgID)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	limits := lifecycle.PlanFor(org)
	// Sizes and connections are measured now, one catalog query per cluster.
	dbsByCluster := map[string][]string{}
	for _, r := range rows {
		if r.Project.Provisioned && r.Project.State != store.ProjectDeleting {
			dbsByCluster[r.Project.ClusterID] = append(dbsByCluster[r.Project.ClusterID], r.Project.DatabaseName)
		}
	}
	measured := map[string]map[string]*dataplane.DatabaseCounters{}
	for id, dbs := range dbsByCluster {
		c, err := s.deps.Lifecycle.Cluster(id)
		if err != nil {
			continue // a cluster this server cannot reach: its projects report 0
		}
		if measured[id], err = c.SampleDatabases(ctx, dbs); err != nil {
			return nil, s.fail(ctx, err, "")
		}
	}
	u := &OrganizationUsage{Projects: make([]wire.ProjectUsage, 0, len(rows))}
	var previewLimit *int
	if limits.MaxPreviews >= 0 {
		previewLimit = &limits.MaxPreviews
	}
	for _, r := range rows {
		pu := wire.ProjectUsage{ProjectID: r.Project.ID, Name: r.Project.Name, Plan: limits.Name,
			StorageLimitBytes: limits.StorageLimitBytes, ConnectionLimit: limits.MaxConnections,
			Previews: r.Previews, PreviewLimit: previewLimit, BackupBytes: r.BackupBytes}
		if dc := measured[r.Project.ClusterID][r.Project.DatabaseName]; dc != nil {
			pu.StorageBytes, pu.Connections = dc.SizeBytes, dc.Connections
		}
		u.Projects = append(u.Projects, pu)
		u.Totals.Projects++
		u.Totals.Previews += pu.Previews
		u.Totals.StorageBytes += pu.StorageBytes
		u.Totals.BackupBytes += pu.BackupBytes
		u.Totals.Connections += pu.Connections
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	from := today.AddDate(0, 0, -(usageDays - 1))
	hist, err := store.OrganizationStorageHistory(ctx, s.deps.Store.Pool, orgID, from)
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	u.StorageHistory = make([]wire.DailyStorage, usageDays)
	for i := range usageDays {
		d := from.AddDate(0, 0, i).Format(time.DateOnly)
		u.StorageHistory[i] = wire.DailyStorage{Date: d, StorageBytes: hist[d]}
	}
	out := &UsageOutput{}
	out.Body.Usage = u
	return out, nil
}
