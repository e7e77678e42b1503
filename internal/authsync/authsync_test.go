package authsync

import (
	"errors"
	"testing"
	"time"
)

func TestParseUserProviders(t *testing.T) {
	// A Clerk user object (Backend API User): times in epoch ms, e-mail by primary id.
	clerk := `{"id":"user_2abc","object":"user","username":"capy","first_name":"Cara","last_name":"Bara",
		"image_url":"https://img.clerk.com/x","primary_email_address_id":"idn_2",
		"email_addresses":[{"id":"idn_1","email_address":"old@example.com"},{"id":"idn_2","email_address":"cara@example.com"}],
		"created_at":1700000000000,"updated_at":1700000100000,"last_sign_in_at":1700000200000}`
	u, err := ParseUser([]byte(clerk))
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "user_2abc" || *u.Email != "cara@example.com" || *u.FirstName != "Cara" || *u.LastName != "Bara" ||
		*u.Username != "capy" || *u.Image != "https://img.clerk.com/x" || !u.CreatedAt.Equal(time.UnixMilli(1700000000000)) ||
		!u.LastSignInAt.Equal(time.UnixMilli(1700000200000)) {
		t.Fatalf("clerk user read as %+v", u)
	}
	// Auth0: user_id, given/family name, nickname, picture, RFC 3339 times, last_login.
	auth0 := `{"user_id":"auth0|42","email":"a@example.com","given_name":"Ada","family_name":"L","nickname":"ada",
		"picture":"https://p/x.png","created_at":"2024-01-02T03:04:05.000Z","updated_at":"2024-02-02T03:04:05Z","last_login":"2024-03-02T03:04:05Z"}`
	u, err = ParseUser([]byte(auth0))
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "auth0|42" || *u.FirstName != "Ada" || *u.Username != "ada" || *u.Image != "https://p/x.png" ||
		u.LastSignInAt.Format(time.RFC3339) != "2024-03-02T03:04:05Z" {
		t.Fatalf("auth0 user read as %+v", u)
	}
	// Better Auth: one name split at the first space, image, camelCase times.
	ba := `{"id":"ba_1","email":"b@example.com","name":"Grace Brewster Hopper","image":"https://i/g","createdAt":"2024-05-06T07:08:09Z","updatedAt":1715000000000}`
	u, err = ParseUser([]byte(ba))
	if err != nil {
		t.Fatal(err)
	}
	if *u.FirstName != "Grace" || *u.LastName != "Brewster Hopper" || *u.Image != "https://i/g" || u.UpdatedAt.UnixMilli() != 1715000000000 {
		t.Fatalf("better auth user read as %+v", u)
	}
	for _, bad := range []string{`[]`, `{"email":"x"}`, `{"id":"x","created_at":"yesterday"}`, `null`} {
		if _, err := ParseUser([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", bad, err)
		}
	}
}

func TestParseEvent(t *testing.T) {
	ev, user, ignore, err := ParseEvent(true, []byte(`{"type":"user.deleted","object":"event","data":{"id":"user_1","deleted":true}}`))
	if err != nil || ignore || ev != UserDeleted || string(user) != `{"id":"user_1","deleted":true}` {
		t.Fatalf("clerk delete: %q %s %v %v", ev, user, ignore, err)
	}
	if _, _, ignore, err := ParseEvent(true, []byte(`{"type":"session.created","data":{}}`)); !ignore || err != nil {
		t.Fatalf("clerk session event not ignored: %v %v", ignore, err)
	}
	if _, _, _, err := ParseEvent(false, []byte(`{"event":"user.renamed","user":{"id":"x"}}`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown auth0 event: %v", err)
	}
	if _, _, _, err := ParseEvent(false, []byte(`{"event":"user.created"}`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("event without user: %v", err)
	}
	if _, _, _, err := ParseEvent(false, []byte(`not json`)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("not json: %v", err)
	}
}
