package observe

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	mail "github.com/wneessen/go-mail"

	"github.com/capydb/capydb/internal/store"
)

// Mailer sends alert e-mails.
type Mailer interface {
	Send(ctx context.Context, to []string, subject, body string) error
}

// SMTP sends through an SMTP server configured by URL (--smtp-url):
// smtp://user:pass@host:587?from=alerts@example.com uses STARTTLS when the
// server offers it; smtps:// is implicit TLS; ?tls=none sends in clear
// (a relay on loopback).
type SMTP struct {
	host, from, user, pass string
	port                   int
	ssl                    bool
	policy                 mail.TLSPolicy
}

// ParseSMTPURL reads --smtp-url.
func ParseSMTPURL(raw string) (*SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, fmt.Errorf("--smtp-url must look like smtp://user:password@host:587?from=alerts@example.com")
	}
	s := &SMTP{host: u.Hostname(), from: u.Query().Get("from"), ssl: u.Scheme == "smtps", policy: mail.TLSOpportunistic}
	if s.from == "" {
		return nil, fmt.Errorf("--smtp-url needs ?from=<sender address>")
	}
	s.port = 587
	if s.ssl {
		s.port = 465
	}
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("--smtp-url: bad port %q", p)
		}
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	switch u.Query().Get("tls") {
	case "none":
		s.policy = mail.NoTLS
	case "required":
		s.policy = mail.TLSMandatory
	}
	return s, nil
}

// Send implements Mailer.
func (s *SMTP) Send(ctx context.Context, to []string, subject, body string) error {
	m := mail.NewMsg()
	if err := m.From(s.from); err != nil {
		return err
	}
	if err := m.To(to...); err != nil {
		return err
	}
	m.Subject(subject)
	m.SetBodyString(mail.TypeTextPlain, body)
	opts := []mail.Option{mail.WithPort(s.port), mail.WithTLSPolicy(s.policy)}
	if s.ssl {
		opts = append(opts, mail.WithSSL())
	}
	if s.user != "" {
		auth := mail.SMTPAuthPlain
		if s.policy == mail.NoTLS {
			auth = mail.SMTPAuthPlainNoEnc // a loopback relay without TLS
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(s.user), mail.WithPassword(s.pass))
	}
	c, err := mail.NewClient(s.host, opts...)
	if err != nil {
		return err
	}
	return c.DialAndSendWithContext(ctx, m)
}

// pendingMail is an alert notification to e-mail once its transaction
// committed.
type pendingMail struct {
	orgID, typ string
	alert      store.Alert
}

// mailText renders an alert notification.
func mailText(typ string, a *store.Alert) (string, string) {
	state := "triggered"
	if typ == "alert.resolved" {
		state = "resolved"
	}
	unit := func(v int64) string {
		if a.Kind == KindStorage {
			return fmt.Sprintf("%d bytes", v)
		}
		return fmt.Sprintf("%d connections", v)
	}
	subject := fmt.Sprintf("[CapyDB] %s alert %s (%s) on project %s", a.Kind, state, a.Severity, a.ProjectID)
	var b strings.Builder
	fmt.Fprintf(&b, "Project %s: the %s alert %s is %s.\n\n", a.ProjectID, a.Kind, a.ID, state)
	fmt.Fprintf(&b, "Severity: %s\nObserved: %s of %s (%.1f %%)\nTriggered at: %s\n", a.Severity,
		unit(a.ObservedValue), unit(a.LimitValue), Percent(a.ObservedValue, a.LimitValue),
		a.TriggeredAt.UTC().Format("2006-01-02T15:04:05Z"))
	if a.ResolvedAt != nil {
		fmt.Fprintf(&b, "Resolved at: %s\n", a.ResolvedAt.UTC().Format("2006-01-02T15:04:05Z"))
	}
	b.WriteString("\nSee `capydb alerts list` and `capydb metrics` for details.\n")
	return subject, b.String()
}

// recipients are the organization's billing e-mail plus its extra alert
// recipients, or none when it switched alert e-mails off (§21.4).
func recipients(ctx context.Context, db store.DB, orgID string) ([]string, error) {
	prefs, err := store.GetNotificationPreferences(ctx, db, orgID)
	if err != nil || !prefs.AlertEmailsEnabled {
		return nil, err
	}
	org, err := store.GetOrganization(ctx, db, orgID)
	if err != nil {
		return nil, err
	}
	var to []string
	if org.BillingEmail != nil && *org.BillingEmail != "" {
		to = append(to, *org.BillingEmail)
	}
	for _, r := range prefs.AlertEmailRecipients {
		if !containsFold(to, r) {
			to = append(to, r)
		}
	}
	return to, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
