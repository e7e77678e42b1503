package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Alert is a project_alerts row (PRODUCT.md §17.3).
type Alert struct {
	ID             string
	OrganizationID string
	ProjectID      string
	Kind           string
	Severity       string
	ObservedValue  int64
	LimitValue     int64
	TriggeredAt    time.Time
	LastNotifiedAt *time.Time
	AcknowledgedAt *time.Time
	ResolvedAt     *time.Time
	ReadOnly       bool
}

const alertColumns = `id, organization_id, project_id, kind, severity, observed_value, limit_value,
	triggered_at, last_notified_at, acknowledged_at, resolved_at, readonly`

func scanAlert(row pgx.Row) (*Alert, error) {
	return scanOne(row, func(a *Alert) []any {
		return []any{&a.ID, &a.OrganizationID, &a.ProjectID, &a.Kind, &a.Severity, &a.ObservedValue,
			&a.LimitValue, &a.TriggeredAt, &a.LastNotifiedAt, &a.AcknowledgedAt, &a.ResolvedAt, &a.ReadOnly}
	})
}

// OpenAlerts returns the open alerts of the given projects, locked for the
// evaluator's transaction.
func OpenAlerts(ctx context.Context, tx pgx.Tx, projectIDs []string) ([]*Alert, error) {
	rows, err := tx.Query(ctx, `SELECT `+alertColumns+` FROM project_alerts
		WHERE project_id = ANY($1) AND resolved_at IS NULL FOR UPDATE`, projectIDs)
	return collect(rows, err, scanAlert)
}

// InsertAlert opens an alert.
func InsertAlert(ctx context.Context, db DB, a *Alert) error {
	_, err := db.Exec(ctx, `INSERT INTO project_alerts (`+alertColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		a.ID, a.OrganizationID, a.ProjectID, a.Kind, a.Severity, a.ObservedValue, a.LimitValue,
		a.TriggeredAt, a.LastNotifiedAt, a.AcknowledgedAt, a.ResolvedAt, a.ReadOnly)
	return err
}

// UpdateAlert writes the evaluator's changes to an alert.
func UpdateAlert(ctx context.Context, db DB, a *Alert) error {
	_, err := db.Exec(ctx, `UPDATE project_alerts SET severity = $2, observed_value = $3, limit_value = $4,
		last_notified_at = $5, resolved_at = $6, readonly = $7 WHERE id = $1`,
		a.ID, a.Severity, a.ObservedValue, a.LimitValue, a.LastNotifiedAt, a.ResolvedAt, a.ReadOnly)
	return err
}

// ListAlerts returns a project's open alerts and those resolved since
// resolvedSince, newest first.
func ListAlerts(ctx context.Context, db DB, projectID string, resolvedSince time.Time) ([]*Alert, error) {
	rows, err := db.Query(ctx, `SELECT `+alertColumns+` FROM project_alerts
		WHERE project_id = $1 AND (resolved_at IS NULL OR resolved_at >= $2)
		ORDER BY triggered_at DESC, id DESC`, projectID, resolvedSince)
	return collect(rows, err, scanAlert)
}

// AcknowledgeAlert records acknowledged_at the first time and returns the alert.
func AcknowledgeAlert(ctx context.Context, db DB, projectID, id string, now time.Time) (*Alert, error) {
	return scanAlert(db.QueryRow(ctx, `UPDATE project_alerts SET acknowledged_at = coalesce(acknowledged_at, $3)
		WHERE project_id = $1 AND id = $2 RETURNING `+alertColumns, projectID, id, now))
}

// CountOpenAlerts counts open alerts by kind and severity (Prometheus).
func CountOpenAlerts(ctx context.Context, db DB) (map[[2]string]int, error) {
	rows, err := db.Query(ctx, `SELECT kind, severity, count(*) FROM project_alerts
		WHERE resolved_at IS NULL GROUP BY kind, severity`)
	if err != nil {
		return nil, err
	}
	out := map[[2]string]int{}
	var k, s string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&k, &s, &n}, func() error { out[[2]string{k, s}] = n; return nil })
	return out, err
}

// NotificationPreferences is a notification_preferences row; UpdatedAt nil
// means never saved (defaults).
type NotificationPreferences struct {
	OrganizationID         string
	AlertEmailsEnabled     bool
	AlertEmailRecipients   []string
	BillingEmailRecipients []string
	UpdatedAt              *time.Time
}

// GetNotificationPreferences returns an organization's preferences, or the
// defaults when it never saved any.
func GetNotificationPreferences(ctx context.Context, db DB, orgID string) (*NotificationPreferences, error) {
	p := &NotificationPreferences{OrganizationID: orgID}
	err := db.QueryRow(ctx, `SELECT alert_emails_enabled, alert_email_recipients, billing_email_recipients, updated_at
		FROM notification_preferences WHERE organization_id = $1`, orgID).
		Scan(&p.AlertEmailsEnabled, &p.AlertEmailRecipients, &p.BillingEmailRecipients, &p.UpdatedAt)
	if err == pgx.ErrNoRows {
		return &NotificationPreferences{OrganizationID: orgID, AlertEmailsEnabled: true,
			AlertEmailRecipients: []string{}, BillingEmailRecipients: []string{}}, nil
	}
	return p, err
}

// PutNotificationPreferences replaces an organization's preferences.
func PutNotificationPreferences(ctx context.Context, db DB, p *NotificationPreferences) (*NotificationPreferences, error) {
	out := &NotificationPreferences{OrganizationID: p.OrganizationID}
	err := db.QueryRow(ctx, `INSERT INTO notification_preferences (organization_id, alert_emails_enabled,
		alert_email_recipients, billing_email_recipients, updated_at) VALUES ($1, $2, $3, $4, now())
		ON CONFLICT (organization_id) DO UPDATE SET alert_emails_enabled = EXCLUDED.alert_emails_enabled,
		  alert_email_recipients = EXCLUDED.alert_email_recipients,
		  billing_email_recipients = EXCLUDED.billing_email_recipients, updated_at = now()
		RETURNING alert_emails_enabled, alert_email_recipients, billing_email_recipients, updated_at`,
		p.OrganizationID, p.AlertEmailsEnabled, p.AlertEmailRecipients, p.BillingEmailRecipients).
		Scan(&out.AlertEmailsEnabled, &out.AlertEmailRecipients, &out.BillingEmailRecipients, &out.UpdatedAt)
	return out, err
}
