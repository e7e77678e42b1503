package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/domainerr"
	"github.com/capydb/capydb/internal/ids"
	"github.com/capydb/capydb/internal/netguard"
	"github.com/capydb/capydb/internal/secretbox"
	"github.com/capydb/capydb/internal/store"
)

// MaxAttempts is how many attempts a delivery gets (tests get one).
const MaxAttempts = 8

// Limits on endpoint fields.
const (
	maxURLLength         = 2048
	maxDescriptionLength = 500
)

// invalid is a caller's mistake; the message is safe to show.
func invalid(format string, a ...any) error { return domainerr.Errorf(domainerr.Invalid, format, a...) }

// Actor is who made a change, for the audit log.
type Actor struct {
	Kind string // user, api_key, operator, system
	ID   string
}

// Service is what the API does with webhook endpoints.
type Service struct {
	Store *store.Store
	Box   *secretbox.Box
	// Guard checks receiver hosts when an URL is saved (the dispatcher checks
	// again at connect time).
	Guard *netguard.Guard
	// AllowInsecure permits http:// URLs (and, through Guard, private
	// addresses): local development only.
	AllowInsecure bool
}

// EndpointInput is a create or update request; nil = not given.
type EndpointInput struct {
	URL         *string
	Description *string
	EventTypes  *[]string
	IsActive    *bool
}

// CheckURL validates a receiver URL and returns it normalized.
func (s *Service) CheckURL(ctx context.Context, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", invalid("url is required")
	}
	if len(raw) > maxURLLength {
		return "", invalid("url must be at most %d characters", maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return "", invalid("url is not a valid URL")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && !(s.AllowInsecure && scheme == "http") {
		if s.AllowInsecure {
			return "", invalid("url must use http or https")
		}
		return "", invalid("url must use https")
	}
	u.Scheme = scheme
	host := u.Hostname()
	if host == "" {
		return "", invalid("url must name a host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", invalid("url has an invalid port")
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	guard := s.Guard
	if guard == nil {
		guard = &netguard.Guard{AllowPrivate: s.AllowInsecure}
	}
	if _, err := guard.Resolve(rctx, host); err != nil {
		if errors.Is(err, netguard.ErrNotAllowed) {
			return "", invalid("host is not allowed")
		}
		return "", invalid("url host %s cannot be resolved", host)
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nil
}

// CheckEventTypes validates a subscription list, dropping repeats.
func CheckEventTypes(in []string) ([]string, error) {
	out := []string{}
	for _, t := range in {
		switch {
		case t == TestEvent:
			return nil, invalid("event_types: %s cannot be subscribed to (only the test route sends it)", TestEvent)
		case !InCatalogue(t):
			return nil, invalid("event_types: unknown event type %q (valid: %s)", t, strings.Join(Catalogue, ", "))
		}
		dup := false
		for _, o := range out {
			dup = dup || o == t
		}
		if !dup {
			out = append(out, t)
		}
	}
	return out, nil
}

func checkDescription(d string) (*string, error) {
	d = strings.TrimSpace(d)
	if utf8.RuneCountInString(d) > maxDescriptionLength {
		return nil, invalid("description must be at most %d characters", maxDescriptionLength)
	}
	if strings.IndexFunc(d, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0 {
		return nil, invalid("description must not contain control characters")
	}
	if d == "" {
		return nil, nil
	}
	return &d, nil
}

// Create stores a new endpoint and returns it with its plaintext secret,
// which is never readable again.
func (s *Service) Create(ctx context.Context, orgID string, in EndpointInput, actor Actor) (*store.WebhookEndpoint, string, error) {
	if in.URL == nil {
		return nil, "", invalid("url is required")
	}
	u, err := s.CheckURL(ctx, *in.URL)
	if err != nil {
		return nil, "", err
	}
	e := &store.WebhookEndpoint{ID: ids.New("whe_"), OrganizationID: orgID, URL: u, EventTypes: []string{}, IsActive: true}
	if in.Description != nil {
		if e.Description, err = checkDescription(*in.Description); err != nil {
			return nil, "", err
		}
	}
	if in.EventTypes != nil {
		if e.EventTypes, err = CheckEventTypes(*in.EventTypes); err != nil {
			return nil, "", err
		}
	}
	if in.IsActive != nil {
		e.IsActive = *in.IsActive
	}
	secret := NewSecret()
	e.SecretEnc = s.Box.Seal([]byte(secret))
	err = s.Store.InTx(ctx, func(tx pgx.Tx) error {
		if err := store.InsertWebhookEndpoint(ctx, tx, e); err != nil {
			return fmt.Errorf("while storing the webhook endpoint: %w", err)
		}
		return audit(ctx, tx, orgID, "webhook_endpoint.created", actor, map[string]any{
			"webhook_endpoint_id": e.ID, "url": e.URL, "event_types": e.EventTypes, "is_active": e.IsActive})
	})
	if err != nil {
		return nil, "", err
	}
	return e, secret, nil
}

// Update changes the given fields of an endpoint.
func (s *Service) Update(ctx context.Context, orgID, id string, in EndpointInput, actor Actor) (*store.WebhookEndpoint, error) {
	var newURL string
	if in.URL != nil {
		u, err := s.CheckURL(ctx, *in.URL)
		if err != nil {
			return nil, err
		}
		newURL = u
	}
	var desc *string
	var types []string
	var err error
	if in.Description != nil {
		if desc, err = checkDescription(*in.Description); err != nil {
			return nil, err
		}
	}
	if in.EventTypes != nil {
		if types, err = CheckEventTypes(*in.EventTypes); err != nil {
			return nil, err
		}
	}
	var e *store.WebhookEndpoint
	err = s.Store.InTx(ctx, func(tx pgx.Tx) error {
		var err error
		if e, err = store.LockWebhookEndpoint(ctx, tx, orgID, id); err != nil {
			return err
		}
		changed := []string{}
		if in.URL != nil {
			e.URL, changed = newURL, append(changed, "url")
		}
		if in.Description != nil {
			e.Description, changed = desc, append(changed, "description")
		}
		if in.EventTypes != nil {
			e.EventTypes, changed = types, append(changed, "event_types")
		}
		if in.IsActive != nil {
			e.IsActive, changed = *in.IsActive, append(changed, "is_active")
		}
		if err := store.UpdateWebhookEndpoint(ctx, tx, e); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, "webhook_endpoint.updated", actor, map[string]any{
			"webhook_endpoint_id": e.ID, "changed": changed})
	})
	if err != nil {
		return nil, err
	}
	return store.GetWebhookEndpoint(ctx, s.Store.Pool, orgID, id)
}

// Delete removes an endpoint; deliveries not yet sent are cancelled with it.
func (s *Service) Delete(ctx context.Context, orgID, id string, actor Actor) error {
	return s.Store.InTx(ctx, func(tx pgx.Tx) error {
		if err := store.DeleteWebhookEndpoint(ctx, tx, orgID, id); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, "webhook_endpoint.deleted", actor, map[string]any{"webhook_endpoint_id": id})
	})
}

// RotateSecret replaces an endpoint's secret; every later attempt, retries
// of older deliveries included, is signed with the new one.
func (s *Service) RotateSecret(ctx context.Context, orgID, id string, actor Actor) (*store.WebhookEndpoint, string, error) {
	secret := NewSecret()
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		if err := store.SetWebhookEndpointSecret(ctx, tx, orgID, id, s.Box.Seal([]byte(secret))); err != nil {
			return err
		}
		return audit(ctx, tx, orgID, "webhook_endpoint.secret_rotated", actor, map[string]any{"webhook_endpoint_id": id})
	})
	if err != nil {
		return nil, "", err
	}
	e, err := store.GetWebhookEndpoint(ctx, s.Store.Pool, orgID, id)
	return e, secret, err
}

// Test queues a synthetic webhook.test event for one endpoint, with one
// attempt, whatever its subscriptions and active flag.
func (s *Service) Test(ctx context.Context, orgID, id string) (*store.WebhookDelivery, error) {
	var d *store.WebhookDelivery
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		e, err := store.LockWebhookEndpoint(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		evtID := ids.New("evt_")
		data := fmt.Appendf(nil, `{"webhook_endpoint_id":%q}`, e.ID)
		payload, err := BuildEnvelope(evtID, TestEvent, orgID, time.Now(), data)
		if err != nil {
			return err
		}
		d = &store.WebhookDelivery{ID: ids.New("whd_"), OrganizationID: orgID, EndpointID: e.ID, EventID: evtID,
			EventType: TestEvent, Payload: payload, Source: "test", MaxAttempts: 1}
		return store.InsertWebhookDelivery(ctx, tx, d)
	})
	return d, err
}

// Redeliver queues a new delivery of an earlier delivery's envelope, with a
// fresh id and attempt budget; the original stays as it was.
func (s *Service) Redeliver(ctx context.Context, orgID, endpointID, deliveryID string) (*store.WebhookDelivery, error) {
	var d *store.WebhookDelivery
	err := s.Store.InTx(ctx, func(tx pgx.Tx) error {
		e, err := store.LockWebhookEndpoint(ctx, tx, orgID, endpointID)
		if err != nil {
			return err
		}
		orig, err := store.GetWebhookDelivery(ctx, tx, orgID, endpointID, deliveryID)
		if err != nil {
			return err
		}
		if !e.IsActive {
			return domainerr.New(domainerr.Conflict, "webhook endpoint is not active; activate it before redelivering")
		}
		d = &store.WebhookDelivery{ID: ids.New("whd_"), OrganizationID: orgID, EndpointID: e.ID, EventID: orig.EventID,
			EventType: orig.EventType, Payload: orig.Payload, Source: "redeliver", RedeliveryOf: &orig.ID,
			MaxAttempts: MaxAttempts}
		return store.InsertWebhookDelivery(ctx, tx, d)
	})
	return d, err
}

func audit(ctx context.Context, db store.DB, orgID, action string, actor Actor, meta map[string]any) error {
	a := &store.AuditEvent{ID: ids.New("aud_"), OrganizationID: orgID, Action: action, ActorKind: actor.Kind, Metadata: meta}
	if actor.ID != "" {
		a.ActorID = &actor.ID
	}
	if a.ActorKind == "" {
		a.ActorKind = "system"
	}
	return store.InsertAuditEvent(ctx, db, a)
}
