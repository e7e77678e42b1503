// Package authsync keeps the capydb_auth.users table of a project database
// in step with an identity provider (PRODUCT.md §23.3): it reads the user
// objects of Clerk, Auth0 and Better Auth into one row shape and writes them
// on a session the caller opened as the tenant's own login (never with more
// rights than the tenant, docs/security.md). Sessions pin search_path to
// pg_catalog, so every name here is schema-qualified.
package authsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Events of the receivers.
const (
	UserCreated = "user.created"
	UserUpdated = "user.updated"
	UserDeleted = "user.deleted"
)

// DDL creates the schema and the table when missing (idempotent).
const DDL = `CREATE SCHEMA IF NOT EXISTS capydb_auth;
CREATE TABLE IF NOT EXISTS capydb_auth.users (
    id              text PRIMARY KEY,
    email           text,
    first_name      text,
    last_name       text,
    username        text,
    image_url       text,
    created_at      timestamptz,
    updated_at      timestamptz,
    last_sign_in_at timestamptz,
    deleted_at      timestamptz,
    raw             jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE capydb_auth.users IS 'Kept in sync by CapyDB from the identity provider; edits are overwritten by the next event for the user.'`

// Conn is what the writes need: a *pgx.Conn or a transaction.
type Conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// EnsureSchema creates capydb_auth.users when missing.
func EnsureSchema(ctx context.Context, c Conn) error {
	if _, err := c.Exec(ctx, DDL); err != nil {
		return fmt.Errorf("while creating capydb_auth.users: %w", err)
	}
	return nil
}

// User is one row of capydb_auth.users.
type User struct {
	ID                                          string
	Email, FirstName, LastName, Username, Image *string
	CreatedAt, UpdatedAt, LastSignInAt          *time.Time
	Raw                                         json.RawMessage
}

// ErrInvalid is a user object or event the receivers cannot read (400).
var ErrInvalid = errors.New("invalid event")

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// ParseUser reads a provider's user object: the fields of PRODUCT.md §23.3,
// whichever of each provider's spellings is present.
func ParseUser(raw json.RawMessage) (*User, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, invalidf("user must be a JSON object")
	}
	u := &User{Raw: raw}
	u.ID = firstString(m, "id", "user_id")
	if u.ID == "" {
		return nil, invalidf("user has no id (id or user_id)")
	}
	u.Email = ptr(firstString(m, "email"))
	if u.Email == nil {
		u.Email = ptr(clerkPrimaryEmail(m))
	}
	u.FirstName = ptr(firstString(m, "first_name", "given_name"))
	u.LastName = ptr(firstString(m, "last_name", "family_name"))
	if name := strings.TrimSpace(firstString(m, "name")); name != "" && u.FirstName == nil && u.LastName == nil {
		first, last, _ := strings.Cut(name, " ")
		u.FirstName, u.LastName = ptr(first), ptr(strings.TrimSpace(last))
	}
	u.Username = ptr(firstString(m, "username", "nickname"))
	u.Image = ptr(firstString(m, "image_url", "picture", "image"))
	var err error
	for _, f := range []struct {
		dst  **time.Time
		keys []string
	}{{&u.CreatedAt, []string{"created_at", "createdAt"}}, {&u.UpdatedAt, []string{"updated_at", "updatedAt"}},
		{&u.LastSignInAt, []string{"last_sign_in_at", "last_login"}}} {
		if *f.dst, err = firstTime(m, f.keys...); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// clerkPrimaryEmail is the address of email_addresses whose id is
// primary_email_address_id (else the first one).
func clerkPrimaryEmail(m map[string]any) string {
	list, _ := m["email_addresses"].([]any)
	primary, _ := m["primary_email_address_id"].(string)
	first := ""
	for _, e := range list {
		em, _ := e.(map[string]any)
		addr, _ := em["email_address"].(string)
		if first == "" {
			first = addr
		}
		if id, _ := em["id"].(string); primary != "" && id == primary {
			return addr
		}
	}
	return first
}

func firstString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// firstTime reads epoch milliseconds or RFC 3339 (the providers send both).
func firstTime(m map[string]any, keys ...string) (*time.Time, error) {
	for _, k := range keys {
		switch v := m[k].(type) {
		case float64:
			if v <= 0 || v > math.MaxInt64/2 {
				return nil, invalidf("%s is not a time", k)
			}
			t := time.UnixMilli(int64(v)).UTC()
			return &t, nil
		case string:
			if v == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, invalidf("%s is not an RFC 3339 time", k)
			}
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, nil
}

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Upsert writes a created or updated user (keyed on id); a user that was
// deleted and comes back is live again. A missing created_at keeps the old one.
func Upsert(ctx context.Context, c Conn, u *User) error {
	_, err := c.Exec(ctx, `INSERT INTO capydb_auth.users AS u (id, email, first_name, last_name, username, image_url,
			created_at, updated_at, last_sign_in_at, deleted_at, raw)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10::pg_catalog.jsonb)
		ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, first_name = EXCLUDED.first_name,
			last_name = EXCLUDED.last_name, username = EXCLUDED.username, image_url = EXCLUDED.image_url,
			created_at = COALESCE(EXCLUDED.created_at, u.created_at), updated_at = EXCLUDED.updated_at,
			last_sign_in_at = EXCLUDED.last_sign_in_at, deleted_at = NULL, raw = EXCLUDED.raw`,
		u.ID, u.Email, u.FirstName, u.LastName, u.Username, u.Image, u.CreatedAt, u.UpdatedAt, u.LastSignInAt, string(u.Raw))
	if err != nil {
		return fmt.Errorf("while writing capydb_auth.users: %w", err)
	}
	return nil
}

// SoftDelete marks a user deleted (the row stays, and the first deletion
// time is kept); an unknown id gets a row that is deleted from the start.
func SoftDelete(ctx context.Context, c Conn, id string, raw json.RawMessage, at time.Time) error {
	_, err := c.Exec(ctx, `INSERT INTO capydb_auth.users AS u (id, deleted_at, raw) VALUES ($1, $2, $3::pg_catalog.jsonb)
		ON CONFLICT (id) DO UPDATE SET deleted_at = COALESCE(u.deleted_at, EXCLUDED.deleted_at)`, id, at, string(raw))
	if err != nil {
		return fmt.Errorf("while writing capydb_auth.users: %w", err)
	}
	return nil
}

// ParseEvent reads a receiver's body into the event and the user object:
// Clerk's {"type", "data"} envelope or the {"event", "user"} of Auth0 and
// Better Auth (API.md §4.17 AuthSyncEvent). ignore is true for a Clerk event
// that is not about users (answered 200 and not applied).
func ParseEvent(clerk bool, body []byte) (event string, user json.RawMessage, ignore bool, err error) {
	var env struct {
		Type  string          `json:"type"`
		Data  json.RawMessage `json:"data"`
		Event string          `json:"event"`
		User  json.RawMessage `json:"user"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return "", nil, false, invalidf("body is not a JSON object")
	}
	if clerk {
		event, user = env.Type, env.Data
		if !strings.HasPrefix(event, "user.") || (event != UserCreated && event != UserUpdated && event != UserDeleted) {
			return event, nil, true, nil
		}
		if len(user) == 0 {
			return "", nil, false, invalidf("data is required")
		}
		return event, user, false, nil
	}
	event, user = env.Event, env.User
	if event != UserCreated && event != UserUpdated && event != UserDeleted {
		return "", nil, false, invalidf("event must be user.created, user.updated or user.deleted")
	}
	if len(user) == 0 || string(user) == "null" {
		return "", nil, false, invalidf("user is required")
	}
	return event, user, false, nil
}

// Apply writes one event in one transaction.
func Apply(ctx context.Context, conn *pgx.Conn, event string, user json.RawMessage, now time.Time) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		switch event {
		case UserCreated, UserUpdated:
			u, err := ParseUser(user)
			if err != nil {
				return err
			}
			return Upsert(ctx, tx, u)
		case UserDeleted:
			var m map[string]any
			if err := json.Unmarshal(user, &m); err != nil || m == nil {
				return invalidf("user must be a JSON object")
			}
			id := firstString(m, "id", "user_id")
			if id == "" {
				return invalidf("user has no id (id or user_id)")
			}
			return SoftDelete(ctx, tx, id, user, now)
		}
		return invalidf("event %q is not user.created, user.updated or user.deleted", event)
	})
}
