package localcluster

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/capydb/capydb/internal/bgsvc"
)

// The operator's certificate is copied into the TLS directory under these
// names (postgres and pgbouncer read the copies, owned by the postgres user;
// the operator's files may live anywhere and belong to anyone).
const (
	operatorCertName = "operator.crt"
	operatorKeyName  = "operator.key"
	operatorCAName   = "operator-ca.crt"

	defaultTLSReloadInterval = 30 * time.Second
)

// operatorTLS reports whether the operator gave a certificate and key.
func (c *Cluster) operatorTLS() bool { return c.cfg.TLSCertFile != "" }

// serverCertFiles are the certificate and key postgres and pgbouncer present.
func (c *Cluster) serverCertFiles() (crt, key string) {
	if c.operatorTLS() {
		return filepath.Join(c.tlsDir, operatorCertName), filepath.Join(c.tlsDir, operatorKeyName)
	}
	return filepath.Join(c.tlsDir, "server.crt"), filepath.Join(c.tlsDir, "server.key")
}

// CACertPEM is what clients verify the server certificate against: the
// generated CA, or with an operator certificate the --tls-ca file (nil
// when none was given: such a certificate is expected to chain to a public
// CA that clients already trust).
func (c *Cluster) CACertPEM() ([]byte, error) {
	path := c.CACertPath()
	if c.operatorTLS() {
		if c.cfg.TLSCAFile == "" {
			return nil, nil
		}
		path = filepath.Join(c.tlsDir, operatorCAName)
	}
	return os.ReadFile(path)
}

// operatorMaterial is one reading of the operator's three files.
type operatorMaterial struct {
	cert, key, ca []byte
	leaf          *x509.Certificate
}

// readOperatorTLS reads and validates the operator's files: the key must
// match the first certificate, the certificate must be valid now, and a
// --tls-ca file must sign the chain.
func (c *Cluster) readOperatorTLS() (*operatorMaterial, error) {
	m := &operatorMaterial{}
	var err error
	if m.cert, err = os.ReadFile(c.cfg.TLSCertFile); err != nil {
		return nil, fmt.Errorf("--tls-cert: %w", err)
	}
	if m.key, err = os.ReadFile(c.cfg.TLSKeyFile); err != nil {
		return nil, fmt.Errorf("--tls-key: %w", err)
	}
	pair, err := tls.X509KeyPair(m.cert, m.key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert and --tls-key are not a usable pair: %w", err)
	}
	if m.leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
		return nil, fmt.Errorf("--tls-cert: %w", err)
	}
	now := time.Now()
	if now.After(m.leaf.NotAfter) || now.Before(m.leaf.NotBefore) {
		return nil, fmt.Errorf("--tls-cert is valid only from %s to %s", m.leaf.NotBefore.Format(time.RFC3339), m.leaf.NotAfter.Format(time.RFC3339))
	}
	if c.cfg.TLSCAFile == "" {
		return m, nil
	}
	if m.ca, err = os.ReadFile(c.cfg.TLSCAFile); err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(m.ca) {
		return nil, errors.New("--tls-ca holds no PEM certificate")
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(ic)
		}
	}
	if _, err := m.leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
		return nil, fmt.Errorf("--tls-ca does not sign --tls-cert: %w", err)
	}
	return m, nil
}

// installOperatorTLS validates the operator's files and copies them into
// the TLS directory when they differ from the installed copies. It
// reports whether anything changed; on an error the copies stay as they were.
func (c *Cluster) installOperatorTLS() (bool, error) {
	m, err := c.readOperatorTLS()
	if err != nil {
		return false, err
	}
	if err := leafCovers(m.leaf, c.publicHost); err != nil {
		// Clients using verify-full will refuse it; the operator may have
		// reasons (a proxy in front), so it is a warning.
		c.log.Warn("the operator certificate does not name the public host", "component", "tls", "error", err.Error())
	}
	crt, key := c.serverCertFiles()
	caPath := filepath.Join(c.tlsDir, operatorCAName)
	if sameContent(crt, m.cert) && sameContent(key, m.key) && (m.ca == nil || sameContent(caPath, m.ca)) {
		return false, nil
	}
	// Key first, then the certificate: nothing reads them until the reload
	// below, and a crash in between is repaired by the next start.
	if err := writeFileAtomic(key, m.key, 0o600, c.owner); err != nil {
		return false, err
	}
	if err := writeFileAtomic(crt, m.cert, 0o644, c.owner); err != nil {
		return false, err
	}
	if m.ca != nil {
		if err := writeFileAtomic(caPath, m.ca, 0o644, c.owner); err != nil {
			return false, err
		}
	}
	c.log.Info("installed the operator certificate", "component", "tls", "subject", m.leaf.Subject.String(),
		"serial", m.leaf.SerialNumber.Text(16), "sha256", fingerprint(m.leaf.Raw), "not_after", m.leaf.NotAfter.Format(time.RFC3339))
	return true, nil
}

func leafCovers(leaf *x509.Certificate, host string) error {
	return leaf.VerifyHostname(host)
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// watchOperatorTLS checks the operator's files every interval and, when
// they changed and are a valid pair, installs them and makes postgres and
// pgbouncer load them (new connections get the new certificate; open ones
// keep theirs). A bad pair is logged and the installed one stays.
func (c *Cluster) watchOperatorTLS() {
	interval := c.cfg.TLSReloadInterval
	bgsvc.Default(&interval, defaultTLSReloadInterval)
	ctx := c.stopContext()
	var lastErr string
	c.tlsWatch.Add(1)
	go func() {
		defer c.tlsWatch.Done()
		bgsvc.Every(ctx, interval, func(ctx context.Context) { c.tlsRound(ctx, &lastErr) })
	}()
}

// tlsRound is one check of the operator's files; lastErr keeps the log
// to one line per distinct problem, not one per round.
func (c *Cluster) tlsRound(ctx context.Context, lastErr *string) {
	changed, err := c.installOperatorTLS()
	if err != nil {
		if err.Error() != *lastErr {
			c.log.Error("the new operator certificate was refused; the installed one stays", "component", "tls", "error", err.Error())
			*lastErr = err.Error()
		}
		return
	}
	*lastErr = ""
	if !changed {
		return
	}
	if err := c.reloadTLS(ctx); err != nil {
		c.log.Error("could not reload the certificate", "component", "tls", "error", err.Error())
	}
}

// reloadTLS makes postgres and pgbouncer re-read their certificate files.
func (c *Cluster) reloadTLS(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := c.connectAdmin(ctx, "postgres")
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	_, err = conn.Exec(ctx, "SELECT pg_reload_conf()")
	conn.Close(context.Background())
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return c.reloadBouncer(ctx)
}
