package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/capydb/capydb/internal/integrations"
	"github.com/capydb/capydb/internal/integrations/integrationstest"
)

// authRow is a capydb_auth.users row as the project database holds it.
type authRow struct {
	Found               bool
	Email, First, Last  *string
	Username, Image     *string
	Deleted             bool
	CreatedAt, SignedIn *time.Time
}

// authUser reads one capydb_auth.users row of the project database, as its owner.
func authUser(t *testing.T, dbURL, id string) authRow {
	t.Helper()
	conn, err := connect(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var r authRow
	err = conn.QueryRow(context.Background(), `SELECT email, first_name, last_name, username, image_url, deleted_at IS NOT NULL,
		created_at, last_sign_in_at FROM capydb_auth.users WHERE id = $1`, id).
		Scan(&r.Email, &r.First, &r.Last, &r.Username, &r.Image, &r.Deleted, &r.CreatedAt, &r.SignedIn)
	if err == pgx.ErrNoRows {
		return authRow{}
	}
	if err != nil {
		t.Fatal(err)
	}
	r.Found = true
	return r
}

func authCount(t *testing.T, dbURL string) int {
	t.Helper()
	return query[int](t, dbURL, `SELECT count(*)::int FROM capydb_auth.users`)
}

func ptrStr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// svixDelivery signs body the way Svix does for Clerk, at time at.
func svixDelivery(secret, msgID string, at time.Time, body []byte) []string {
	key, err := integrations.SvixKey(secret)
	if err != nil {
		panic(err)
	}
	ts := strconv.FormatInt(at.Unix(), 10)
	return []string{"svix-id", msgID, "svix-timestamp", ts, "svix-signature", integrations.SignSvix(key, msgID, ts, body)}
}

// clerkUser is a Backend API User object as Clerk sends it.
func clerkUser(id, email, first string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"id":%q,"object":"user","username":null,"first_name":%q,"last_name":"Capybara",
		"image_url":"https://img.clerk.com/%s","primary_email_address_id":"idn_%s",
		"email_addresses":[{"id":"idn_%s","object":"email_address","email_address":%q}],
		"created_at":1700000000000,"updated_at":1700000000000,"last_sign_in_at":1700000500000}`, id, first, id, id, id, email))
}

// checkNoSecret fails when a secret shows up in the server's answers,
// logs, the control database's integration rows or its jobs.
func checkNoSecret(t *testing.T, s *server, answers [][]byte, secrets ...string) {
	t.Helper()
	ctl := s.admin("capydb_control")
	var rows []byte
	rs, err := ctl.Query(context.Background(), `SELECT config::text::bytea, coalesce(secrets_enc, ''::bytea) FROM project_integrations`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var cfg, sealed []byte
		if err := rs.Scan(&cfg, &sealed); err != nil {
			t.Fatal(err)
		}
		rows = append(append(rows, cfg...), sealed...)
	}
	if rs.Err() != nil || len(rows) == 0 {
		t.Fatalf("no integration rows read: %v", rs.Err())
	}
	var jobs string
	if err := ctl.QueryRow(context.Background(), `SELECT coalesce(string_agg(row_to_json(j)::text, ','), '') FROM jobs j`).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	logs := s.logs.String()
	for _, sec := range secrets {
		for i, a := range answers {
			if bytes.Contains(a, []byte(sec)) {
				t.Errorf("answer %d carries a secret: %s", i, a)
			}
		}
		if bytes.Contains(rows, []byte(sec)) {
			t.Errorf("project_integrations holds a secret in clear")
		}
		if strings.Contains(jobs, sec) {
			t.Errorf("a job holds a secret")
		}
		if strings.Contains(logs, sec) {
			t.Errorf("the server log holds a secret")
		}
	}
}

// TestIntegrationAuthSync: Clerk (backfill + Svix webhooks), Auth0 and
// Better Auth receivers write capydb_auth.users in the project database;
// every bad signature is 401 with nothing written.
func TestIntegrationAuthSync(t *testing.T) {
	t.Parallel()
	var users []json.RawMessage
	for i := range 120 { // more than one page of GET /v1/users
		users = append(users, clerkUser(fmt.Sprintf("user_bf%03d", i), fmt.Sprintf("u%d@example.com", i), "Backfilled"))
	}
	const clerkKey = "sk_test_standinClerkSecretKey0123456789"
	clerk := integrationstest.NewClerk(t, clerkKey, users...)
	s := startServer(t, "", 0, 0, "--clerk-api-url", clerk.URL())
	p := s.createProject(map[string]any{"name": "authsync"})
	pid := p["id"].(string)
	dbURL := s.must(200, "GET", "/v1/projects/"+pid+"/connections", nil).str("connections", "direct_url")
	base := "/v1/projects/" + pid + "/integrations"
	var answers [][]byte

	// Nothing connected yet: an empty list, and receivers answer 404.
	if l := s.must(200, "GET", base, nil); !bytes.Contains(l.Raw, []byte(`"integrations":[]`)) {
		t.Fatalf("list: %s", l.Raw)
	}
	expectStatus(t, "clerk receiver before connect", s.req("POST", "/v1/integrations/clerk/webhook/"+pid, hdr(), `{}`), 404, "")
	expectStatus(t, "receiver of an unknown project", s.req("POST", "/v1/integrations/auth0/webhook/prj_nope", hdr("Authorization", "x"), `{}`), 404, "")

	// Clerk: a key Clerk refuses is a 400 quoting Clerk, and stores nothing.
	r := s.call("PUT", base+"/clerk", s.key, map[string]any{"credentials": map[string]any{"secret_key": "sk_test_wrongwrongwrong"}})
	if r.Status != 400 || !strings.Contains(r.str("error"), "The provided secret key is invalid") {
		t.Fatalf("bad clerk key: %d %s", r.Status, r.Raw)
	}
	expectStatus(t, "not a secret key", s.req("PUT", base+"/clerk", bearer(s.key), map[string]any{"credentials": map[string]any{"secret_key": "pk_test_x"}}), 400, "sk_live_")
	expectStatus(t, "bad whsec", s.req("PUT", base+"/clerk", bearer(s.key), map[string]any{"credentials": map[string]any{
		"secret_key": clerkKey, "webhook_signing_secret": "whsec_***"}}), 400, "base64")
	expectStatus(t, "unknown provider", s.req("PUT", base+"/okta", bearer(s.key), map[string]any{}), 400, "clerk, auth0 or better_auth")
	expectStatus(t, "vercel via PUT", s.req("PUT", base+"/vercel", bearer(s.key), map[string]any{}), 400, "connect")
	if l := s.must(200, "GET", base, nil); !bytes.Contains(l.Raw, []byte(`"integrations":[]`)) {
		t.Fatalf("a refused connect left a row: %s", l.Raw)
	}

	whsec := "whsec_" + base64.StdEncoding.EncodeToString([]byte("clerk-svix-signing-key-32-bytes!"))
	r = s.must(200, "PUT", base+"/clerk", map[string]any{"credentials": map[string]any{"secret_key": clerkKey, "webhook_signing_secret": whsec}})
	answers = append(answers, r.Raw)
	if r.str("integration", "provider") != "clerk" || r.get("integration", "has_credentials") != true ||
		r.str("integration", "state") != "active" || !strings.HasPrefix(r.str("integration", "id"), "int_") ||
		r.str("integration", "config", "webhook_receiver") != s.url+"/v1/integrations/clerk/webhook/"+pid {
		t.Fatalf("put clerk: %s", r.Raw)
	}
	job := s.waitJob(r.str("job", "id"))
	if job["type"] != "integration.clerk_backfill" || job["state"] != "completed" {
		t.Fatalf("backfill: %v", job)
	}
	if n := authCount(t, dbURL); n != 120 {
		t.Fatalf("backfill wrote %d users, want 120", n)
	}
	if u := authUser(t, dbURL, "user_bf042"); ptrStr(u.Email) != "u42@example.com" || ptrStr(u.First) != "Backfilled" ||
		u.SignedIn == nil || !u.SignedIn.Equal(time.UnixMilli(1700000500000)) {
		t.Fatalf("backfilled user: %+v", u)
	}
	// The table belongs to the project's own (non-superuser) role, like the rest of its database.
	if super := query[bool](t, dbURL, `SELECT r.rolsuper FROM pg_tables t JOIN pg_roles r ON r.rolname = t.tableowner
		WHERE t.schemaname = 'capydb_auth' AND t.tablename = 'users'`); super {
		t.Fatal("capydb_auth.users is owned by a superuser")
	}
	if l := s.must(200, "GET", base, nil); l.get("integrations").([]any)[0].(map[string]any)["config"].(map[string]any)["backfilled_at"] == nil {
		t.Fatalf("backfilled_at not recorded: %s", l.Raw)
	}
	// The two key checks (limit=1), then two pages of 100.
	if calls := clerk.Calls(); len(calls) != 4 || !strings.HasPrefix(calls[0], "GET /v1/users?limit=1&offset=0") ||
		!strings.HasPrefix(calls[2], "GET /v1/users?limit=100&offset=0") || !strings.Contains(calls[3], "offset=100") {
		t.Fatalf("Clerk calls %v", calls)
	}

	clerkPath := "/v1/integrations/clerk/webhook/" + pid
	deliver := func(path string, headers []string, body []byte) response {
		return s.req("POST", path, hdr(headers...), string(body))
	}
	created := []byte(`{"data":` + string(clerkUser("user_live1", "live@example.com", "Cara")) + `,"object":"event","type":"user.created"}`)
	now := time.Now()
	if r := deliver(clerkPath, svixDelivery(whsec, "msg_1", now, created), created); r.Status != 200 || r.get("ok") != true {
		t.Fatalf("signed user.created: %d %s", r.Status, r.Raw)
	}
	if u := authUser(t, dbURL, "user_live1"); ptrStr(u.Email) != "live@example.com" || ptrStr(u.First) != "Cara" || ptrStr(u.Last) != "Capybara" || u.Deleted {
		t.Fatalf("after user.created: %+v", u)
	}
	updated := bytes.Replace(bytes.Replace(created, []byte("user.created"), []byte("user.updated"), 1), []byte("live@example.com"), []byte("new@example.com"), 1)
	if r := deliver(clerkPath, svixDelivery(whsec, "msg_2", now, updated), updated); r.Status != 200 {
		t.Fatalf("user.updated: %d %s", r.Status, r.Raw)
	}
	if u := authUser(t, dbURL, "user_live1"); ptrStr(u.Email) != "new@example.com" {
		t.Fatalf("after user.updated: %+v", u)
	}
	// Latency of one applied event (verify, tenant session, upsert), for the docs.
	const rounds = 20
	start := time.Now()
	for i := range rounds {
		b := bytes.Replace(updated, []byte("new@example.com"), []byte(fmt.Sprintf("n%d@example.com", i)), 1)
		if r := deliver(clerkPath, svixDelivery(whsec, fmt.Sprintf("msg_l%d", i), now, b), b); r.Status != 200 {
			t.Fatalf("delivery %d: %d %s", i, r.Status, r.Raw)
		}
	}
	t.Logf("clerk receiver: %d signed user.updated applied, %.1f ms each", rounds, float64(time.Since(start).Microseconds())/1000/rounds)
	if u := authUser(t, dbURL, "user_live1"); ptrStr(u.Email) != fmt.Sprintf("n%d@example.com", rounds-1) {
		t.Fatalf("after %d updates: %+v", rounds, u)
	}
	b := updated
	if r := deliver(clerkPath, svixDelivery(whsec, "msg_2b", now, b), b); r.Status != 200 {
		t.Fatalf("user.updated: %d %s", r.Status, r.Raw)
	}
	ignored := []byte(`{"data":{"id":"sess_1"},"object":"event","type":"session.created"}`)
	if r := deliver(clerkPath, svixDelivery(whsec, "msg_3", now, ignored), ignored); r.Status != 200 {
		t.Fatalf("session.created: %d %s", r.Status, r.Raw)
	}

	// Bad signatures: 401, and the user they carry is not written.
	evil := []byte(`{"data":` + string(clerkUser("user_evil", "evil@example.com", "Mallory")) + `,"object":"event","type":"user.created"}`)
	otherSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("not-the-clerk-signing-key-32-by!"))
	good := svixDelivery(whsec, "msg_evil", now, evil)
	for name, c := range map[string]struct {
		h    []string
		body []byte
	}{
		"no signature":          {nil, evil},
		"other secret":          {svixDelivery(otherSecret, "msg_evil", now, evil), evil},
		"one byte altered":      {good, bytes.Replace(evil, []byte("Mallory"), []byte("Mallorz"), 1)},
		"replayed 6 min late":   {svixDelivery(whsec, "msg_evil", now.Add(-6*time.Minute), evil), evil},
		"from 6 min in future":  {svixDelivery(whsec, "msg_evil", now.Add(6*time.Minute), evil), evil},
		"signature of other id": {nil, evil},
	} {
		if name == "signature of other id" {
			c.h = []string{"svix-id", "msg_other", good[2], good[3], good[4], good[5]}
		}
		r := deliver(clerkPath, c.h, c.body)
		expectStatus(t, "clerk "+name, r, 401, "signature")
	}
	if u := authUser(t, dbURL, "user_evil"); u.Found {
		t.Fatal("a badly signed event was written")
	}
	// Well signed but not JSON: 400.
	junk := []byte(`not json`)
	expectStatus(t, "clerk junk", deliver(clerkPath, svixDelivery(whsec, "msg_j", now, junk), junk), 400, "")
	// Over 1 MiB: 413 before anything else.
	big := []byte(`{"type":"user.created","data":{"id":"x","pad":"` + strings.Repeat("a", 1<<20) + `"}}`)
	expectStatus(t, "clerk 1 MiB", deliver(clerkPath, svixDelivery(whsec, "msg_big", now, big), big), 413, "")

	deleted := []byte(`{"data":{"deleted":true,"id":"user_live1","object":"user"},"object":"event","type":"user.deleted"}`)
	if r := deliver(clerkPath, svixDelivery(whsec, "msg_4", now, deleted), deleted); r.Status != 200 {
		t.Fatalf("user.deleted: %d %s", r.Status, r.Raw)
	}
	if u := authUser(t, dbURL, "user_live1"); !u.Found || !u.Deleted || ptrStr(u.Email) != "new@example.com" {
		t.Fatalf("after user.deleted (soft): %+v", u)
	}

	// Auth0: the shared secret in Authorization (Bearer tolerated).
	auth0Secret := "auth0-shared-secret-0123456789abcdef"
	expectStatus(t, "auth0 without secret", s.req("PUT", base+"/auth0", bearer(s.key), map[string]any{}), 400, "webhook_signing_secret is required")
	expectStatus(t, "auth0 short secret", s.req("PUT", base+"/auth0", bearer(s.key), map[string]any{"credentials": map[string]any{"webhook_signing_secret": "short"}}), 400, "at least 16")
	r = s.must(200, "PUT", base+"/auth0", map[string]any{"credentials": map[string]any{"webhook_signing_secret": auth0Secret}})
	answers = append(answers, r.Raw)
	if r.get("job") != nil || r.str("integration", "config", "webhook_receiver") != s.url+"/v1/integrations/auth0/webhook/"+pid {
		t.Fatalf("put auth0: %s", r.Raw)
	}
	auth0Path := "/v1/integrations/auth0/webhook/" + pid
	a0 := []byte(`{"event":"user.created","user":{"user_id":"auth0|77","email":"ada@example.com","given_name":"Ada","family_name":"Lovelace",
		"nickname":"ada","picture":"https://s.gravatar.com/ada.png","created_at":"2024-01-02T03:04:05.000Z","last_login":"2024-03-02T03:04:05.000Z"}}`)
	expectStatus(t, "auth0 wrong secret", deliver(auth0Path, []string{"Authorization", "Bearer " + auth0Secret + "x"}, a0), 401, "")
	expectStatus(t, "auth0 no secret", deliver(auth0Path, nil, a0), 401, "")
	expectStatus(t, "auth0 clerk-style signature", deliver(auth0Path, svixDelivery(whsec, "m", now, a0), a0), 401, "")
	if u := authUser(t, dbURL, "auth0|77"); u.Found {
		t.Fatal("auth0 event written without the secret")
	}
	if r := deliver(auth0Path, []string{"Authorization", "Bearer " + auth0Secret}, a0); r.Status != 200 {
		t.Fatalf("auth0: %d %s", r.Status, r.Raw)
	}
	if u := authUser(t, dbURL, "auth0|77"); ptrStr(u.First) != "Ada" || ptrStr(u.Username) != "ada" || ptrStr(u.Image) != "https://s.gravatar.com/ada.png" ||
		u.SignedIn == nil || u.SignedIn.UTC().Format(time.RFC3339) != "2024-03-02T03:04:05Z" {
		t.Fatalf("auth0 user: %+v", u)
	}
	a0up := []byte(`{"event":"user.updated","user":{"user_id":"auth0|77","email":"ada@lovelace.dev","name":"Ada King"}}`)
	if r := deliver(auth0Path, []string{"Authorization", auth0Secret}, a0up); r.Status != 200 {
		t.Fatalf("auth0 update without Bearer: %d %s", r.Status, r.Raw)
	}
	if u := authUser(t, dbURL, "auth0|77"); ptrStr(u.Email) != "ada@lovelace.dev" || ptrStr(u.Last) != "King" || u.CreatedAt == nil {
		t.Fatalf("auth0 updated user: %+v", u)
	}
	expectStatus(t, "auth0 unknown event", deliver(auth0Path, []string{"Authorization", auth0Secret},
		[]byte(`{"event":"user.renamed","user":{"user_id":"auth0|78"}}`)), 400, "")

	// Better Auth: hex HMAC-SHA256 of the body.
	baSecret := "better-auth-signing-secret-abcdef"
	answers = append(answers, s.must(200, "PUT", base+"/better_auth", map[string]any{"credentials": map[string]any{"webhook_signing_secret": baSecret}}).Raw)
	baPath := "/v1/integrations/better-auth/webhook/" + pid
	ba := []byte(`{"event":"user.created","user":{"id":"ba_1","email":"grace@example.com","name":"Grace Hopper","image":"https://i/g.png",
		"createdAt":"2024-05-06T07:08:09.000Z","updatedAt":"2024-05-06T07:08:09.000Z"}}`)
	sig := integrations.HexHMAC(false, baSecret, ba)
	expectStatus(t, "better auth altered", deliver(baPath, []string{"X-Better-Auth-Signature", sig}, append(bytes.Clone(ba), ' ')), 401, "")
	expectStatus(t, "better auth wrong key", deliver(baPath, []string{"X-Better-Auth-Signature", integrations.HexHMAC(false, "x"+baSecret, ba)}, ba), 401, "")
	expectStatus(t, "better auth missing", deliver(baPath, nil, ba), 401, "")
	if u := authUser(t, dbURL, "ba_1"); u.Found {
		t.Fatal("better auth event written without a valid signature")
	}
	if r := deliver(baPath, []string{"X-Better-Auth-Signature", sig}, ba); r.Status != 200 {
		t.Fatalf("better auth: %d %s", r.Status, r.Raw)
	}
	if u := authUser(t, dbURL, "ba_1"); ptrStr(u.First) != "Grace" || ptrStr(u.Last) != "Hopper" || ptrStr(u.Image) != "https://i/g.png" {
		t.Fatalf("better auth user: %+v", u)
	}
	badUser := []byte(`{"event":"user.created","user":{"email":"noid@example.com"}}`)
	expectStatus(t, "better auth user without id", deliver(baPath, []string{"X-Better-Auth-Signature", integrations.HexHMAC(false, baSecret, badUser)}, badUser), 400, "id")
	baDel := []byte(`{"event":"user.deleted","user":{"id":"ba_1"}}`)
	if r := deliver(baPath, []string{"X-Better-Auth-Signature", integrations.HexHMAC(false, baSecret, baDel)}, baDel); r.Status != 200 {
		t.Fatalf("better auth delete: %d", r.Status)
	}
	if u := authUser(t, dbURL, "ba_1"); !u.Deleted {
		t.Fatal("better auth delete not applied")
	}

	// List: three providers, no secrets anywhere.
	l := s.must(200, "GET", base, nil)
	answers = append(answers, l.Raw)
	if n := len(l.get("integrations").([]any)); n != 3 {
		t.Fatalf("list: %s", l.Raw)
	}
	checkNoSecret(t, s, answers, clerkKey, whsec, auth0Secret, baSecret)

	// Disconnect Auth0: its receiver is gone; the rows stay.
	if d := s.must(200, "DELETE", base+"/auth0", nil); d.get("deleted") != true {
		t.Fatalf("delete: %s", d.Raw)
	}
	expectStatus(t, "delete again", s.req("DELETE", base+"/auth0", bearer(s.key), nil), 404, "")
	expectStatus(t, "auth0 after disconnect", deliver(auth0Path, []string{"Authorization", auth0Secret}, a0), 404, "")
	if u := authUser(t, dbURL, "auth0|77"); !u.Found {
		t.Fatal("disconnecting dropped the synced rows")
	}
	audit := s.must(200, "GET", "/v1/projects/"+pid+"/audit-events?limit=100", nil)
	for _, a := range []string{"project.integration.connected", "project.integration.upsert", "project.integration.delete"} {
		if !bytes.Contains(audit.Raw, []byte(`"`+a+`"`)) {
			t.Errorf("audit has no %s", a)
		}
	}
}

// TestIntegrationReceiverRateLimit: the receivers share one bucket per
// project (--rate-limit-integrations), answered 429 with Retry-After.
func TestIntegrationReceiverRateLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--rate-limit-integrations", "1/m:2")
	for i, path := range []string{"/v1/integrations/clerk/webhook/prj_a", "/v1/integrations/auth0/webhook/prj_a"} {
		expectStatus(t, fmt.Sprintf("delivery %d", i), s.req("POST", path, hdr(), `{}`), 404, "")
	}
	r := s.req("POST", "/v1/integrations/better-auth/webhook/prj_a", hdr(), `{}`)
	expectStatus(t, "third delivery to one project", r, 429, "rate limit exceeded")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	// Per project, not per caller: another project's bucket is full.
	expectStatus(t, "another project", s.req("POST", "/v1/integrations/clerk/webhook/prj_b", hdr(), `{}`), 404, "")
}
