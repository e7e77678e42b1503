package localcluster

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The operator's files are validated before anything is installed, and a
// refused pair leaves the installed copies untouched.
func TestOperatorTLSValidation(t *testing.T) {
	pki := t.TempDir()
	issue := func(name string, expired bool) (certPEM, keyPEM []byte, ca *x509.Certificate) {
		dir := filepath.Join(pki, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		caCert, k, err := newCA()
		if err != nil {
			t.Fatal(err)
		}
		leaf, key, err := newServerCert(caCert, k, "db.example.com")
		if err != nil {
			t.Fatal(err)
		}
		if expired {
			leaf, key = expiredLeaf(t, caCert, k)
		}
		if err := writePair(filepath.Join(dir, "c"), filepath.Join(dir, "k"), leaf, key); err != nil {
			t.Fatal(err)
		}
		certPEM, _ = os.ReadFile(filepath.Join(dir, "c"))
		keyPEM, _ = os.ReadFile(filepath.Join(dir, "k"))
		return certPEM, keyPEM, caCert
	}
	certA, keyA, caA := issue("a", false)
	_, keyB, caB := issue("b", false)
	certOld, keyOld, _ := issue("old", true)
	caPEM := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}

	files := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c := &Cluster{tlsDir: t.TempDir(), publicHost: "db.example.com", log: slog.New(slog.DiscardHandler)}
	c.cfg = Config{TLSCertFile: write("cert", certA), TLSKeyFile: write("key", keyA), TLSCAFile: write("ca", caPEM(caA))}
	if changed, err := c.installOperatorTLS(); err != nil || !changed {
		t.Fatalf("valid pair: changed %v, %v", changed, err)
	}
	if changed, err := c.installOperatorTLS(); err != nil || changed {
		t.Fatalf("same files again: changed %v, %v", changed, err)
	}
	if got, err := c.CACertPEM(); err != nil || string(got) != string(caPEM(caA)) {
		t.Fatalf("CACertPEM with --tls-ca: %v", err)
	}
	installed, _ := os.ReadFile(filepath.Join(c.tlsDir, operatorCertName))

	for _, bad := range []struct {
		name            string
		cert, key, ca   []byte
		wantErrContains string
	}{
		{"key of another certificate", certA, keyB, caPEM(caA), "not a usable pair"},
		{"expired", certOld, keyOld, nil, "is valid only from"},
		{"CA that did not sign it", certA, keyA, caPEM(caB), "--tls-ca does not sign --tls-cert"},
		{"no PEM in the CA file", certA, keyA, []byte("hello"), "no PEM certificate"},
		{"key file is a certificate", certA, certA, nil, "not a usable pair"},
	} {
		write("cert", bad.cert)
		write("key", bad.key)
		c.cfg.TLSCAFile = ""
		if bad.ca != nil {
			c.cfg.TLSCAFile = write("ca", bad.ca)
		}
		_, err := c.installOperatorTLS()
		if err == nil || !strings.Contains(err.Error(), bad.wantErrContains) {
			t.Errorf("%s: error %v, want one containing %q", bad.name, err, bad.wantErrContains)
		}
		if now, _ := os.ReadFile(filepath.Join(c.tlsDir, operatorCertName)); string(now) != string(installed) {
			t.Fatalf("%s: the installed certificate changed", bad.name)
		}
	}

	// Without --tls-ca an operator certificate has no CA to hand out.
	c.cfg.TLSCAFile = ""
	if got, err := c.CACertPEM(); err != nil || got != nil {
		t.Fatalf("CACertPEM without --tls-ca: %q %v", got, err)
	}
}

func expiredLeaf(t *testing.T, ca *x509.Certificate, caKey any) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	leaf, key, err := newServerCert(ca, caKey, "db.example.com")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := *leaf
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	old, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return old, key
}
