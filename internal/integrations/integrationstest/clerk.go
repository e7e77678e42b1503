package integrationstest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
)

// Clerk stands in for the Clerk Backend API: GET /v1/users (limit 1–500,
// offset ≥ 0, order_by) with "Authorization: Bearer <secret key>".
type Clerk struct {
	base
	users []json.RawMessage
}

// NewClerk starts a Clerk stand-in accepting secretKey and holding users
// (Backend API User objects, oldest first).
func NewClerk(t testing.TB, secretKey string, users ...json.RawMessage) *Clerk {
	c := &Clerk{users: users}
	c.token = secretKey
	c.start(t, c.serve)
	return c
}

func (c *Clerk) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/v1/users" {
		c.reject(w, r, "not a route of the Clerk Backend API this server uses")
		return
	}
	if !c.authorized(r) {
		// Clerk's answer to an unknown secret key.
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errors": []map[string]string{{"message": "Invalid authentication",
			"long_message": "The provided secret key is invalid", "code": "authentication_invalid"}}})
		return
	}
	q := r.URL.Query()
	limit, err1 := strconv.Atoi(q.Get("limit"))
	offset, err2 := strconv.Atoi(q.Get("offset"))
	if err1 != nil || err2 != nil || limit < 1 || limit > 500 || offset < 0 {
		c.reject(w, r, "limit must be 1–500 and offset ≥ 0")
		return
	}
	if ob := q.Get("order_by"); ob != "" && ob != "+created_at" && ob != "-created_at" {
		c.reject(w, r, "order_by "+ob)
		return
	}
	c.mu.Lock()
	page := []json.RawMessage{}
	for i := offset; i < len(c.users) && i < offset+limit; i++ {
		page = append(page, c.users[i])
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, page)
}
