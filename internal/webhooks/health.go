package webhooks

import "github.com/capydb/capydb/internal/store"

// Endpoint health values.
const (
	HealthHealthy  = "healthy"
	HealthFailing  = "failing"
	HealthDisabled = "disabled"
)

// FailingAfter is how many failed attempts make a pending delivery mark its
// endpoint failing.
const FailingAfter = 3

// Health derives an endpoint's health (PRODUCT.md §8.7): disabled when
// inactive; failing when its most recent finished delivery failed or a
// pending one has failed FailingAfter attempts; healthy otherwise.
func Health(e *store.WebhookEndpoint) string {
	switch {
	case !e.IsActive:
		return HealthDisabled
	case e.PendingFailing:
		return HealthFailing
	case e.LastFinishedState != nil && *e.LastFinishedState == store.DeliveryFailed:
		return HealthFailing
	}
	return HealthHealthy
}
