package observe

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// Alert kinds and severities (API.md §4.13).
const (
	KindStorage     = "storage"
	KindConnections = "connections"
	SevWarning      = "warning"
	SevCritical     = "critical"
)

// Thresholds of PRODUCT.md §17.3, in percent. Hysteresis: an alert opens at
// 80 (warning) or 95 (critical), drops from critical to warning only below
// 90, and resolves only below 75, so usage hovering near a line never flaps.
const (
	OpenWarning    = 80.0
	OpenCritical   = 95.0
	CriticalToWarn = 90.0
	Resolve        = 75.0
	// Read-only switch of the optional operator option (PRODUCT.md §2).
	ReadOnlyOn  = 100.0
	ReadOnlyOff = 95.0
)

// RenotifyEvery is how often an open alert is notified again.
const RenotifyEvery = 24 * time.Hour

// Next is the severity an alert should have at pct given its current one
// ("" = no open alert); "" in the result means none open (resolved).
func Next(cur string, pct float64) string {
	switch cur {
	case "":
		switch {
		case pct >= OpenCritical:
			return SevCritical
		case pct >= OpenWarning:
			return SevWarning
		}
		return ""
	case SevWarning:
		switch {
		case pct >= OpenCritical:
			return SevCritical
		case pct < Resolve:
			return ""
		}
		return SevWarning
	default: // critical
		switch {
		case pct < Resolve:
			return ""
		case pct < CriticalToWarn:
			return SevWarning
		}
		return SevCritical
	}
}

// Gauge is one observed value against its limit.
type Gauge struct {
	Kind     string
	Observed int64
	Limit    int64
}

// ReadOnlyHook switches a project's database to read-only (on) or back
// (PRODUCT.md §2's operator option, instance.set_readonly). nil = the
// option is off.
type ReadOnlyHook func(ctx context.Context, projectID string, on bool) error

// evaluate applies one gauge reading to a project's open alert of that kind
// (nil when none) inside the sampler's transaction, writing the alert and
// its webhook events.
func evaluate(ctx context.Context, tx pgx.Tx, now time.Time, t store.SampleTarget, g Gauge,
	open *store.Alert, readOnly ReadOnlyHook, mails *[]pendingMail) error {
	pct := Percent(g.Observed, g.Limit)
	cur := ""
	if open != nil {
		cur = open.Severity
	}
	next := Next(cur, pct)
	switch {
	case open == nil && next == "":
		return nil
	case open == nil:
		a := &store.Alert{ID: ids.New("alr_"), OrganizationID: t.OrganizationID, ProjectID: t.ProjectID,
			Kind: g.Kind, Severity: next, ObservedValue: g.Observed, LimitValue: g.Limit, TriggeredAt: now,
			LastNotifiedAt: &now}
		if err := setReadOnly(ctx, a, pct, readOnly); err != nil {
			return err
		}
		if err := store.InsertAlert(ctx, tx, a); err != nil {
			return err
		}
		return notify(ctx, tx, a, "alert.triggered", mails)
	case next == "":
		open.ResolvedAt, open.LastNotifiedAt, open.ObservedValue, open.LimitValue = &now, &now, g.Observed, g.Limit
		if err := setReadOnly(ctx, open, pct, readOnly); err != nil {
			return err
		}
		if err := store.UpdateAlert(ctx, tx, open); err != nil {
			return err
		}
		return notify(ctx, tx, open, "alert.resolved", mails)
	}
	escalated := next == SevCritical && cur != SevCritical
	due := open.LastNotifiedAt == nil || now.Sub(*open.LastNotifiedAt) >= RenotifyEvery
	open.Severity, open.ObservedValue, open.LimitValue = next, g.Observed, g.Limit
	if escalated || due {
		open.LastNotifiedAt = &now
	}
	if err := setReadOnly(ctx, open, pct, readOnly); err != nil {
		return err
	}
	if err := store.UpdateAlert(ctx, tx, open); err != nil {
		return err
	}
	if escalated || due {
		return notify(ctx, tx, open, "alert.triggered", mails)
	}
	return nil
}

// setReadOnly calls the hook when a storage alert crosses 100 % (on) or
// falls below 95 % (off), once per crossing.
func setReadOnly(ctx context.Context, a *store.Alert, pct float64, hook ReadOnlyHook) error {
	if hook == nil || a.Kind != KindStorage {
		return nil
	}
	want := a.ReadOnly
	switch {
	case !a.ReadOnly && pct >= ReadOnlyOn && a.ResolvedAt == nil:
		want = true
	case a.ReadOnly && pct < ReadOnlyOff:
		want = false
	}
	if want == a.ReadOnly {
		return nil
	}
	if err := hook(ctx, a.ProjectID, want); err != nil {
		return err
	}
	a.ReadOnly = want
	return nil
}

// ToWire is the API form of an alert.
func ToWire(a *store.Alert) *wire.ProjectAlert {
	return &wire.ProjectAlert{ID: a.ID, ProjectID: a.ProjectID, Kind: a.Kind, Severity: a.Severity,
		ObservedValue: a.ObservedValue, LimitValue: a.LimitValue, TriggeredAt: a.TriggeredAt.UTC(),
		LastNotifiedAt: utcp(a.LastNotifiedAt), AcknowledgedAt: utcp(a.AcknowledgedAt), ResolvedAt: utcp(a.ResolvedAt)}
}

func utcp(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// notify writes the webhook event of an alert to the outbox and queues its
// e-mail for after the commit.
func notify(ctx context.Context, tx pgx.Tx, a *store.Alert, typ string, mails *[]pendingMail) error {
	*mails = append(*mails, pendingMail{orgID: a.OrganizationID, typ: typ, alert: *a})
	if err := store.InsertEvent(ctx, tx, ids.New("evt_"), a.OrganizationID, typ, map[string]any{
		"project_id": a.ProjectID, "alert": ToWire(a)}); err != nil {
		return err
	}
	return store.NotifyWebhooks(ctx, tx)
}
