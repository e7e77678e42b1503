package integrations

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Clerk is the Clerk Backend API (clerk.com/docs/reference/backend-api)
// with one instance's secret key.
type Clerk struct {
	e         Endpoints
	secretKey string
}

// NewClerk returns a Clerk client for a secret key (sk_live_… or sk_test_…).
func (e Endpoints) NewClerk(secretKey string) *Clerk { return &Clerk{e: e, secretKey: secretKey} }

// ValidClerkSecretKey reports whether key looks like a Clerk secret key.
func ValidClerkSecretKey(key string) bool {
	return (strings.HasPrefix(key, "sk_live_") || strings.HasPrefix(key, "sk_test_")) && len(key) > len("sk_test_")
}

// ClerkPage is how many users one GET /v1/users returns (Clerk's maximum is 500).
const ClerkPage = 100

// ListUsers reads one page of users, oldest first: GET /v1/users?limit=&offset=&order_by=+created_at.
func (c *Clerk) ListUsers(ctx context.Context, limit, offset int) ([]json.RawMessage, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}, "order_by": {"+created_at"}}
	var out []json.RawMessage
	err := call(ctx, c.e.client(), "Clerk", http.MethodGet, withQuery(orDefault(c.e.Clerk, DefaultClerkURL)+"/v1/users", q), c.secretKey, nil, &out)
	return out, err
}

// Check validates the secret key with the smallest documented read.
func (c *Clerk) Check(ctx context.Context) error {
	_, err := c.ListUsers(ctx, 1, 0)
	return err
}
