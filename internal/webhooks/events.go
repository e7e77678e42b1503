// Package webhooks delivers lifecycle events to organizations' HTTP
// endpoints: signed, retried with backoff, and durable. Events come from the
// outbox table (written in the transaction of each state change); a
// dispatcher fans each one out into per-endpoint delivery rows and sends
// them, claiming rows with FOR UPDATE SKIP LOCKED so that several servers
// never send the same attempt twice.
package webhooks

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Catalogue is every event an endpoint can subscribe to.
var Catalogue = []string{
	"job.completed", "job.failed", "project.ready", "project.deleted", "backup.completed",
	"preview.ready", "preview.deleted", "import.completed", "restore.completed",
	"credentials.rotated", "alert.triggered", "alert.resolved",
	"project.moved", // † self-hosted fleets (docs/fleet.md)
}

// TestEvent is the synthetic event of the test route; it cannot be subscribed to.
const TestEvent = "webhook.test"

// InCatalogue reports whether typ is a subscribable event type.
func InCatalogue(typ string) bool { return slices.Contains(Catalogue, typ) }

// Subscribed reports whether an endpoint with these event types wants typ.
func Subscribed(eventTypes []string, typ string) bool {
	return len(eventTypes) == 0 || slices.Contains(eventTypes, typ)
}

// Envelope is the body posted to receivers.
type Envelope struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// TimeFormat is RFC 3339 in UTC with milliseconds, as in every API time.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// BuildEnvelope renders an event as the exact bytes to post. data gets the
// organization_id every receiver needs when the event did not carry it.
func BuildEnvelope(id, typ, orgID string, createdAt time.Time, data []byte) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if len(data) > 0 && string(data) != "null" {
		if err := json.Unmarshal(data, &fields); err != nil {
			return nil, fmt.Errorf("while reading event %s data: %w", id, err)
		}
	}
	if _, ok := fields["organization_id"]; !ok {
		b, _ := json.Marshal(orgID)
		fields["organization_id"] = b
	}
	d, err := json.Marshal(fields)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Envelope{ID: id, Type: typ, CreatedAt: createdAt.UTC().Format(TimeFormat), Data: d})
}
