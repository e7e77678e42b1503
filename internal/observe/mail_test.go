package observe_test

import (
	"fmt"
	"io"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/capydb/capydb/internal/dataplane"
	"github.com/capydb/capydb/internal/observe"
	"github.com/capydb/capydb/internal/plan"
	"github.com/capydb/capydb/internal/store"
)

// inbox is an in-process SMTP server on loopback that keeps what it gets.
type inbox struct {
	mu   sync.Mutex
	msgs []received
}

type received struct {
	from string
	to   []string
	data string
}

type session struct {
	in  *inbox
	cur received
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.cur.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.cur.data = string(b)
	s.in.mu.Lock()
	s.in.msgs = append(s.in.msgs, s.cur)
	s.in.mu.Unlock()
	return err
}

func (in *inbox) messages() []received {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]received(nil), in.msgs...)
}

func startInbox(t *testing.T) (*inbox, string) {
	in := &inbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{in: in}, nil }))
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return in, ln.Addr().String()
}

// TestAlertEmails: an alert that opens and resolves is e-mailed to the
// billing address and the extra recipients through a real SMTP exchange;
// with alert e-mails switched off nothing is sent.
func TestAlertEmails(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	in, addr := startInbox(t)
	m, err := observe.ParseSMTPURL(fmt.Sprintf("smtp://%s?from=alerts@capydb.test&tls=none", addr))
	if err != nil {
		t.Fatal(err)
	}
	billing := "billing@example.com"
	if _, err := e.st.Pool.Exec(ctx, `UPDATE organizations SET billing_email = $1 WHERE id = $2`, billing, e.org.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PutNotificationPreferences(ctx, e.st.Pool, &store.NotificationPreferences{OrganizationID: e.org.ID,
		AlertEmailsEnabled: true, AlertEmailRecipients: []string{"oncall@example.com"}, BillingEmailRecipients: []string{}}); err != nil {
		t.Fatal(err)
	}
	var limit int64 = 1 << 40
	s := observe.NewSampler(observe.Config{Store: e.st, Mailer: m,
		Clusters: func() map[string]*dataplane.Cluster { return map[string]*dataplane.Cluster{e.dp.ID: e.dp} },
		Limits: func(string) plan.Limits {
			return plan.Limits{Name: "vibe", MaxConnections: 40, StorageLimitBytes: limit, MaxPreviews: 1}
		}}, bgsvcConfig())
	st, err := e.dp.LiveStats(ctx, e.prj.DatabaseName)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	round := func(pct float64) {
		t.Helper()
		limit = int64(float64(st.SizeBytes) * 100 / pct)
		now = now.Add(time.Minute)
		if _, err := s.Round(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	round(85)
	msgs := in.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d e-mails after the alert opened, want 1", len(msgs))
	}
	got := msgs[0]
	if got.from != "alerts@capydb.test" || strings.Join(got.to, ",") != billing+",oncall@example.com" ||
		subject(t, got.data) != "[CapyDB] storage alert triggered (warning) on project "+e.prj.ID ||
		!strings.Contains(got.data, "Severity: warning") {
		t.Fatalf("the e-mail: from %s to %v\n%s", got.from, got.to, got.data)
	}
	round(86) // still open, not due: no e-mail
	round(50)
	if msgs := in.messages(); len(msgs) != 2 || !strings.Contains(subject(t, msgs[1].data), "storage alert resolved") {
		t.Fatalf("after resolving: %d e-mails", len(msgs))
	}
	if _, err := store.PutNotificationPreferences(ctx, e.st.Pool, &store.NotificationPreferences{OrganizationID: e.org.ID,
		AlertEmailsEnabled: false, AlertEmailRecipients: []string{}, BillingEmailRecipients: []string{}}); err != nil {
		t.Fatal(err)
	}
	round(99)
	if msgs := in.messages(); len(msgs) != 2 {
		t.Fatalf("alert e-mails switched off, yet %d e-mails", len(msgs))
	}
	var events int
	_ = e.st.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE organization_id = $1`, e.org.ID).Scan(&events)
	if events != 3 {
		t.Errorf("%d webhook events, want 3 (the webhook is sent whatever the e-mail preference)", events)
	}
}

func TestParseSMTPURL(t *testing.T) {
	for _, bad := range []string{"", "http://x", "smtp://host", "smtp://:25?from=a@b.c", "smtp://h:x?from=a@b.c"} {
		if _, err := observe.ParseSMTPURL(bad); err == nil {
			t.Errorf("ParseSMTPURL(%q) accepted", bad)
		}
	}
}

func subject(t *testing.T, data string) string {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return m.Header.Get("Subject")
}
