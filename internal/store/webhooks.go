package store

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// WebhookEndpoint is an organization's receiver of events.
type WebhookEndpoint struct {
	ID             string
	OrganizationID string
	URL            string
	Description    *string
	EventTypes     []string // empty = all events
	IsActive       bool
	SecretEnc      []byte // sealed whsec_ secret
	CreatedAt      time.Time
	UpdatedAt      time.Time

	// Health inputs, filled by the reads below.
	LastFinishedState *string // state of the most recently finished delivery
	PendingFailing    bool    // a pending delivery has failed three attempts or more
}

const endpointColumns = `w.id, w.organization_id, w.url, w.description, w.event_types, w.is_active, w.secret_enc,
	w.created_at, w.updated_at,
	(SELECT d.state FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.finished_at IS NOT NULL
		ORDER BY d.finished_at DESC, d.id DESC LIMIT 1),
	EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.state = 'pending' AND d.failures >= 3)`

func scanEndpoint(row pgx.Row) (*WebhookEndpoint, error) {
	var e WebhookEndpoint
	err := row.Scan(&e.ID, &e.OrganizationID, &e.URL, &e.Description, &e.EventTypes, &e.IsActive, &e.SecretEnc,
		&e.CreatedAt, &e.UpdatedAt, &e.LastFinishedState, &e.PendingFailing)
	if err != nil {
		return nil, notFound(err)
	}
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	return &e, nil
}

// InsertWebhookEndpoint stores a new endpoint.
func InsertWebhookEndpoint(ctx context.Context, db DB, e *WebhookEndpoint) error {
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	return db.QueryRow(ctx, `INSERT INTO webhook_endpoints (id, organization_id, url, description, event_types, is_active, secret_enc)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING created_at, updated_at`,
		e.ID, e.OrganizationID, e.URL, e.Description, e.EventTypes, e.IsActive, e.SecretEnc).Scan(&e.CreatedAt, &e.UpdatedAt)
}

// GetWebhookEndpoint reads an endpoint of an organization.
func GetWebhookEndpoint(ctx context.Context, db DB, orgID, id string) (*WebhookEndpoint, error) {
	return scanEndpoint(db.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints w
		WHERE w.id = $1 AND w.organization_id = $2`, id, orgID))
}

// LockWebhookEndpoint reads an endpoint FOR UPDATE (inside a transaction).
func LockWebhookEndpoint(ctx context.Context, tx pgx.Tx, orgID, id string) (*WebhookEndpoint, error) {
	return scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints w
		WHERE w.id = $1 AND w.organization_id = $2 FOR UPDATE OF w`, id, orgID))
}

// ListWebhookEndpoints returns an organization's endpoints, oldest first.
func ListWebhookEndpoints(ctx context.Context, db DB, orgID string) ([]*WebhookEndpoint, error) {
	rows, err := db.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints w
		WHERE w.organization_id = $1 ORDER BY w.created_at, w.id`, orgID)
	return collect(rows, err, scanEndpoint)
}

// UpdateWebhookEndpoint writes an endpoint's editable fields.
func UpdateWebhookEndpoint(ctx context.Context, db DB, e *WebhookEndpoint) error {
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	return notFound(db.QueryRow(ctx, `UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5,
			is_active = $6, updated_at = now()
		WHERE id = $1 AND organization_id = $2 RETURNING updated_at`,
		e.ID, e.OrganizationID, e.URL, e.Description, e.EventTypes, e.IsActive).Scan(&e.UpdatedAt))
}

// SetWebhookEndpointSecret replaces an endpoint's sealed secret.
func SetWebhookEndpointSecret(ctx context.Context, db DB, orgID, id string, secretEnc []byte) error {
	tag, err := db.Exec(ctx, `UPDATE webhook_endpoints SET secret_enc = $3, updated_at = now()
		WHERE id = $1 AND organization_id = $2`, id, orgID, secretEnc)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteWebhookEndpoint removes an endpoint; its deliveries go with it.
func DeleteWebhookEndpoint(ctx context.Context, db DB, orgID, id string) error {
	tag, err := db.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id = $1 AND organization_id = $2`, id, orgID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// WebhookDelivery is one event bound for one endpoint, with its attempts.
type WebhookDelivery struct {
	ID             string
	OrganizationID string
	EndpointID     string
	EventID        string
	EventType      string
	Payload        json.RawMessage
	Source         string // event, test, redeliver
	RedeliveryOf   *string
	State          string
	Attempts       int
	MaxAttempts    int
	Failures       int
	ResponseStatus *int
	LastError      *string
	NextAttemptAt  *time.Time
	ClaimedBy      *string
	DeliveredAt    *time.Time
	FinishedAt     *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

const deliveryColumns = `d.id, d.organization_id, d.endpoint_id, d.event_id, d.event_type, d.payload, d.source,
	d.redelivery_of, d.state, d.attempts, d.max_attempts, d.failures, d.response_status, d.last_error,
	d.next_attempt_at, d.claimed_by, d.delivered_at, d.finished_at, d.created_at, d.updated_at`

func scanDelivery(row pgx.Row) (*WebhookDelivery, error) {
	var d WebhookDelivery
	var payload []byte
	err := row.Scan(&d.ID, &d.OrganizationID, &d.EndpointID, &d.EventID, &d.EventType, &payload, &d.Source,
		&d.RedeliveryOf, &d.State, &d.Attempts, &d.MaxAttempts, &d.Failures, &d.ResponseStatus, &d.LastError,
		&d.NextAttemptAt, &d.ClaimedBy, &d.DeliveredAt, &d.FinishedAt, &d.CreatedAt, &d.UpdatedAt)
	if err != nil {
		return nil, notFound(err)
	}
	d.Payload = payload
	return &d, nil
}

// InsertWebhookDelivery stores one delivery (tests, redeliveries) and wakes
// the dispatchers when the transaction commits.
func InsertWebhookDelivery(ctx context.Context, db DB, d *WebhookDelivery) error {
	err := db.QueryRow(ctx, `INSERT INTO webhook_deliveries (id, organization_id, endpoint_id, event_id, event_type,
			payload, source, redelivery_of, max_attempts, next_attempt_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
		RETURNING state, attempts, next_attempt_at, created_at, updated_at`,
		d.ID, d.OrganizationID, d.EndpointID, d.EventID, d.EventType, string(d.Payload), d.Source, d.RedeliveryOf,
		d.MaxAttempts).Scan(&d.State, &d.Attempts, &d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt)
	if err != nil {
		return err
	}
	return NotifyWebhooks(ctx, db)
}

// WebhooksChannel is the LISTEN/NOTIFY channel that wakes the dispatchers
// (also notified by a trigger on every insert into events).
const WebhooksChannel = "capydb_webhooks"

// NotifyWebhooks wakes the dispatchers when the transaction commits.
func NotifyWebhooks(ctx context.Context, db DB) error {
	_, err := db.Exec(ctx, `SELECT pg_notify($1, '')`, WebhooksChannel)
	return err
}

// GetWebhookDelivery reads a delivery of an endpoint of an organization.
func GetWebhookDelivery(ctx context.Context, db DB, orgID, endpointID, id string) (*WebhookDelivery, error) {
	return scanDelivery(db.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d
		WHERE d.id = $1 AND d.endpoint_id = $2 AND d.organization_id = $3`, id, endpointID, orgID))
}

// ListWebhookDeliveries returns an endpoint's deliveries, newest first.
func ListWebhookDeliveries(ctx context.Context, db DB, endpointID string, limit int) ([]*WebhookDelivery, error) {
	rows, err := db.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries d
		WHERE d.endpoint_id = $1 ORDER BY d.created_at DESC, d.id DESC LIMIT $2`, endpointID, limit)
	return collect(rows, err, scanDelivery)
}

// ---- dispatcher mechanics ----

// ClaimUndispatchedEvents locks up to limit outbox events that were not yet
// fanned out to webhook endpoints; other dispatchers skip them meanwhile.
func ClaimUndispatchedEvents(ctx context.Context, tx pgx.Tx, limit int) ([]Event, error) {
	rows, err := tx.Query(ctx, `SELECT id, organization_id, type, data, created_at FROM events
		WHERE webhooks_dispatched_at IS NULL ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		err := r.Scan(&e.ID, &e.OrganizationID, &e.Type, &e.Data, &e.CreatedAt)
		return e, err
	})
}

// MarkEventsDispatched records that events were fanned out.
func MarkEventsDispatched(ctx context.Context, tx pgx.Tx, ids []string) error {
	_, err := tx.Exec(ctx, `UPDATE events SET webhooks_dispatched_at = now() WHERE id = ANY($1)`, ids)
	return err
}

// ActiveWebhookEndpoints returns the active endpoints of the given
// organizations (without health inputs).
func ActiveWebhookEndpoints(ctx context.Context, db DB, orgIDs []string) ([]*WebhookEndpoint, error) {
	rows, err := db.Query(ctx, `SELECT id, organization_id, event_types, created_at FROM webhook_endpoints
		WHERE organization_id = ANY($1) AND is_active`, orgIDs)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*WebhookEndpoint, error) {
		e := &WebhookEndpoint{IsActive: true}
		err := r.Scan(&e.ID, &e.OrganizationID, &e.EventTypes, &e.CreatedAt)
		return e, err
	})
}

// InsertFanOutDeliveries stores the deliveries of outbox events; a delivery
// that already exists for the same endpoint and event is skipped.
func InsertFanOutDeliveries(ctx context.Context, tx pgx.Tx, ds []*WebhookDelivery) error {
	if len(ds) == 0 {
		return nil
	}
	n := len(ds)
	idsCol, orgs, eps, evts, types, payloads, maxes := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]int32, n)
	for i, d := range ds {
		idsCol[i], orgs[i], eps[i], evts[i], types[i], payloads[i], maxes[i] = d.ID, d.OrganizationID, d.EndpointID,
			d.EventID, d.EventType, string(d.Payload), int32(d.MaxAttempts)
	}
	_, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, organization_id, endpoint_id, event_id, event_type,
			payload, source, max_attempts, next_attempt_at)
		SELECT id, org, ep, evt, typ, payload::json, 'event', max, now()
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[])
			AS t(id, org, ep, evt, typ, payload, max)
		ON CONFLICT (endpoint_id, event_id) WHERE source = 'event' DO NOTHING`,
		idsCol, orgs, eps, evts, types, payloads, maxes)
	return err
}

// ClaimedDelivery is a delivery claimed for one attempt, with what the
// attempt needs from its endpoint (read at claim time: a rotated secret is
// used by every later attempt).
type ClaimedDelivery struct {
	*WebhookDelivery
	URL       string
	SecretEnc []byte
}

// ClaimParams bound one claim.
type ClaimParams struct {
	WorkerID string
	Lease    time.Duration // how long the attempt may take before another server retries it
	Max      int           // deliveries to claim at most
	// PerEndpoint is how many attempts one endpoint may have in flight;
	// InFlight is how many it already has (at this server).
	PerEndpoint int
	InFlight    map[string]int
}

// ClaimDueDeliveries starts one attempt on each of up to Max due pending
// deliveries (never more than PerEndpoint in flight per endpoint, nothing of
// inactive endpoints except tests), in one statement: rows other servers
// hold are skipped, attempts is incremented and the next due time pushed
// past the lease, so the attempt number identifies the claim and an attempt
// whose server died is due again after the lease.
func ClaimDueDeliveries(ctx context.Context, db DB, p ClaimParams) ([]*ClaimedDelivery, error) {
	full := []string{}
	busy, used := []string{}, []int32{}
	for ep, n := range p.InFlight {
		if n >= p.PerEndpoint {
			full = append(full, ep)
		} else if n > 0 {
			busy, used = append(busy, ep), append(used, int32(n))
		}
	}
	rows, err := db.Query(ctx, `WITH locked AS (
			SELECT d.id, d.endpoint_id, d.next_attempt_at FROM webhook_deliveries d
			JOIN webhook_endpoints w ON w.id = d.endpoint_id
			WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND (w.is_active OR d.source = 'test')
			  AND NOT (d.endpoint_id = ANY($2))
			ORDER BY d.next_attempt_at LIMIT $1
			FOR UPDATE OF d SKIP LOCKED
		), ranked AS (
			SELECT l.id, l.next_attempt_at,
				row_number() OVER (PARTITION BY l.endpoint_id ORDER BY l.next_attempt_at, l.id) AS rn,
				$5::int - coalesce(b.used, 0) AS room
			FROM locked l LEFT JOIN unnest($3::text[], $4::int[]) AS b(endpoint_id, used) ON b.endpoint_id = l.endpoint_id
		), chosen AS (
			SELECT id FROM ranked WHERE rn <= room ORDER BY next_attempt_at, id LIMIT $6
		)
		UPDATE webhook_deliveries d SET attempts = d.attempts + 1, claimed_by = $7,
			next_attempt_at = now() + $8::interval, updated_at = now()
		FROM webhook_endpoints w
		WHERE d.id IN (SELECT id FROM chosen) AND w.id = d.endpoint_id AND d.state = 'pending'
		RETURNING `+deliveryColumns+`, w.url, w.secret_enc`,
		min(2*p.Max+p.PerEndpoint, 500), full, busy, used, p.PerEndpoint, p.Max, p.WorkerID, pgInterval(p.Lease))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ClaimedDelivery
	for rows.Next() {
		var d WebhookDelivery
		var c ClaimedDelivery
		var payload []byte
		if err := rows.Scan(&d.ID, &d.OrganizationID, &d.EndpointID, &d.EventID, &d.EventType, &payload, &d.Source,
			&d.RedeliveryOf, &d.State, &d.Attempts, &d.MaxAttempts, &d.Failures, &d.ResponseStatus, &d.LastError,
			&d.NextAttemptAt, &d.ClaimedBy, &d.DeliveredAt, &d.FinishedAt, &d.CreatedAt, &d.UpdatedAt,
			&c.URL, &c.SecretEnc); err != nil {
			return nil, err
		}
		d.Payload = payload
		c.WebhookDelivery = &d
		out = append(out, &c)
	}
	return out, rows.Err()
}

// AttemptOutcome is how one attempt ended.
type AttemptOutcome struct {
	Delivered      bool
	ResponseStatus int           // 0 = no response
	Error          string        // why it failed
	RetryIn        time.Duration // wait before the next attempt, if any remain
}

// FinishDeliveryAttempt records an attempt's outcome, only if the delivery
// is still on that attempt and claimed by workerID (a claim that expired and
// was taken over records nothing). It reports whether it recorded.
func FinishDeliveryAttempt(ctx context.Context, db DB, id string, attempt int, workerID string, o AttemptOutcome) (bool, error) {
	var status *int
	if o.ResponseStatus > 0 {
		status = &o.ResponseStatus
	}
	var sql string
	args := []any{id, attempt, workerID, status}
	if o.Delivered {
		sql = `UPDATE webhook_deliveries SET state = 'delivered', response_status = $4, last_error = NULL,
			next_attempt_at = NULL, delivered_at = now(), finished_at = now(), claimed_by = NULL, updated_at = now()
			WHERE id = $1 AND attempts = $2 AND claimed_by = $3 AND state = 'pending'`
	} else {
		sql = `UPDATE webhook_deliveries SET failures = failures + 1,
				response_status = coalesce($4, response_status), last_error = $5,
				state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
				next_attempt_at = CASE WHEN attempts >= max_attempts THEN NULL ELSE now() + $6::interval END,
				finished_at = CASE WHEN attempts >= max_attempts THEN now() END,
				claimed_by = NULL, updated_at = now()
			WHERE id = $1 AND attempts = $2 AND claimed_by = $3 AND state = 'pending'`
		args = append(args, o.Error, pgInterval(o.RetryIn))
	}
	tag, err := db.Exec(ctx, sql, args...)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseDeliveryAttempt gives back a claimed attempt that was cut short by
// a shutdown: it does not count, and the delivery is due again at once.
func ReleaseDeliveryAttempt(ctx context.Context, db DB, id string, attempt int, workerID string) error {
	_, err := db.Exec(ctx, `UPDATE webhook_deliveries SET attempts = attempts - 1, next_attempt_at = now(),
			claimed_by = NULL, updated_at = now()
		WHERE id = $1 AND attempts = $2 AND claimed_by = $3 AND state = 'pending'`, id, attempt, workerID)
	return err
}

// FailAbandonedDeliveries fails deliveries whose last attempt's claim
// expired without an outcome (the server sending it died).
func FailAbandonedDeliveries(ctx context.Context, db DB) (int64, error) {
	tag, err := db.Exec(ctx, `UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL,
			finished_at = now(), failures = failures + 1, claimed_by = NULL, updated_at = now(),
			last_error = 'the server sending the last attempt stopped before it finished'
		WHERE state = 'pending' AND attempts >= max_attempts AND next_attempt_at <= now()`)
	return tag.RowsAffected(), err
}

// NextWebhookDue is when the earliest pending delivery becomes due (nil:
// none). It reads one entry of the due index; deliveries of inactive
// endpoints count too, so a time in the past just means "poll".
func NextWebhookDue(ctx context.Context, db DB) (*time.Time, error) {
	var t time.Time
	err := db.QueryRow(ctx, `SELECT next_attempt_at FROM webhook_deliveries
		WHERE state = 'pending' AND next_attempt_at IS NOT NULL ORDER BY next_attempt_at LIMIT 1`).Scan(&t)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// PruneWebhookDeliveries deletes deliveries created before cutoff.
func PruneWebhookDeliveries(ctx context.Context, db DB, cutoff time.Time) (int64, error) {
	tag, err := db.Exec(ctx, `DELETE FROM webhook_deliveries WHERE created_at < $1`, cutoff)
	return tag.RowsAffected(), err
}

// OverdueWebhookDeliveries counts pending deliveries due for longer than d.
func OverdueWebhookDeliveries(ctx context.Context, db DB, d time.Duration) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
		WHERE d.state = 'pending' AND (w.is_active OR d.source = 'test')
		  AND d.next_attempt_at < now() - $1::interval`, pgInterval(d)).Scan(&n)
	return n, err
}

// pgInterval spells d as a Postgres interval (Duration.String's "µs" is not one).
func pgInterval(d time.Duration) string {
	return strconv.FormatInt(d.Microseconds(), 10) + " microseconds"
}
