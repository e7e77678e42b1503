package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifying is what env pull makes of a URL the server hands out for
// libpq, pgx and node-postgres.
func verifying(u, caPath string) string {
	return strings.Replace(u, "sslmode=require", "sslmode=verify-full&sslrootcert="+caPath, 1)
}

// TestTLSVerifyFull: the CA is served anonymously; env pull writes it and
// URLs that node-postgres, pgx and psql use with full verification on both
// ports; the server's own sslmode=require URLs fail in node-postgres (the
// reported bug), and a wrong CA or host name fails everywhere.
func TestTLSVerifyFull(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0)

	// GET /v1/ca.pem: anonymous, PEM, the CA in the data directory.
	resp, err := http.Get(s.url + "/v1/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-pem-file" {
		t.Fatalf("GET /v1/ca.pem: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	onDisk, err := os.ReadFile(filepath.Join(s.dataDir, "tls", "ca.crt"))
	if err != nil || string(onDisk) != string(caPEM) {
		t.Fatalf("/v1/ca.pem is not tls/ca.crt (%v)", err)
	}
	if ca := parseCert(t, caPEM); !ca.IsCA {
		t.Fatalf("/v1/ca.pem is not a CA: %v", ca.Subject)
	}

	p := s.createProject(map[string]any{"name": "TLS Shop"})
	conns := s.must(200, "GET", "/v1/projects/"+p["id"].(string)+"/connections", nil)
	direct, pooled, role := conns.str("connections", "direct_url"), conns.str("connections", "pooled_url"), conns.str("connections", "username")
	if !strings.HasSuffix(direct, "?sslmode=require") || !strings.Contains(direct, "@127.0.0.1:") {
		t.Fatalf("direct URL changed shape: %s", redact(direct))
	}

	// env pull in a node-postgres app.
	u := newCLIUser(t)
	u.expect(0, "login", "--api-url", s.url, "--api-key", s.key)
	app := u.in(t.TempDir())
	cliWriteFiles(t, app.dir, map[string]string{"package.json": `{"dependencies":{"pg":"^8.23.1"}}`})
	pulled := app.json("env", "pull", "--project", p["id"].(string))
	caPath := filepath.Join(app.dir, ".capydb", "ca.crt")
	if pulled["ca_file"] != filepath.Join(".capydb", "ca.crt") {
		t.Fatalf("env pull: %v", pulled)
	}
	if b, err := os.ReadFile(caPath); err != nil || string(b) != string(caPEM) {
		t.Fatalf("%s is not the served CA (%v)", caPath, err)
	}
	env := cliDotenv(t, filepath.Join(app.dir, ".env"))
	if env["DATABASE_URL"] != verifying(pooled, caPath) || env["DATABASE_POOL_URL"] != verifying(pooled, caPath) ||
		env["DATABASE_DIRECT_URL"] != verifying(direct, caPath) || env["PGSSLROOTCERT"] != caPath {
		t.Fatalf("env pull wrote %v", redactAll(env))
	}

	// doctor --fix restores a removed variable in its verifying form.
	envPath := filepath.Join(app.dir, ".env")
	b, _ := os.ReadFile(envPath)
	var kept []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "DATABASE_POOL_URL=") {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(envPath, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if d := app.json("doctor", "--fix"); d["ok"] != true {
		t.Fatalf("doctor --fix: %v", d)
	}
	if got := cliDotenv(t, envPath)["DATABASE_POOL_URL"]; got != verifying(pooled, caPath) {
		t.Fatalf("doctor --fix wrote DATABASE_POOL_URL=%s", redact(got))
	}

	// node-postgres with exactly what env pull wrote: both ports, verified.
	for i, r := range nodeConnect(t, env["DATABASE_URL"], env["DATABASE_DIRECT_URL"]) {
		if !r.OK || r.User != role || r.Answer != 42 {
			t.Fatalf("node-postgres on URL %d of env pull: %+v", i, r)
		}
	}
	// The server's own URLs are what node-postgres 8 refuses (it treats
	// sslmode=require as verify-full): this is the failure env pull fixes.
	for i, r := range nodeConnect(t, direct, pooled) {
		if r.OK || !tlsVerifyCode(r.Code) {
			t.Fatalf("node-postgres on the server's sslmode=require URL %d: %+v (want a certificate verification error)", i, r)
		}
	}

	// pgx and psql with sslmode=verify-full, both ports.
	for _, raw := range []string{verifying(direct, caPath), verifying(pooled, caPath)} {
		if got := query[string](t, raw, "select current_user"); got != role {
			t.Fatalf("pgx on %s: current_user %q", redact(raw), got)
		}
		out, err := exec.Command("psql", raw, "-Atc", "select current_user").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != role {
			t.Fatalf("psql on %s: %v %s", redact(raw), err, out)
		}
	}

	// A CA that did not sign the server certificate fails in every client.
	otherCA := filepath.Join(t.TempDir(), "other-ca.crt")
	_, _, otherPEM := newTestCA(t, "Some other CA")
	if err := os.WriteFile(otherCA, otherPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{verifying(direct, otherCA), verifying(pooled, otherCA)} {
		if r := nodeConnect(t, raw)[0]; r.OK || !tlsVerifyCode(r.Code) {
			t.Fatalf("node-postgres with a wrong CA on %s: %+v", redact(raw), r)
		}
		if c, err := connect(raw); err == nil {
			c.Close(context.Background())
			t.Fatalf("pgx accepted a wrong CA on %s", redact(raw))
		} else if !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Fatalf("pgx with a wrong CA: %v", err)
		}
		out, err := exec.Command("psql", raw, "-Atc", "select 1").CombinedOutput()
		if err == nil || !strings.Contains(string(out), "certificate verify failed") {
			t.Fatalf("psql with a wrong CA on %s: %v %s", redact(raw), err, out)
		}
	}
	// verify-full checks the host name: the right CA, a name not in the certificate.
	du, _ := url.Parse(direct)
	pw, _ := du.User.Password()
	wrongHost := fmt.Sprintf("host=db.invalid hostaddr=127.0.0.1 port=%s user=%s dbname=%s sslmode=verify-full sslrootcert=%s",
		du.Port(), du.User.Username(), strings.TrimPrefix(du.Path, "/"), caPath)
	cmd := exec.Command("psql", wrongHost, "-Atc", "select 1")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pw)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "does not match host name") {
		t.Fatalf("psql verify-full with a host name the certificate lacks: %v %s", err, out)
	}

	// A Drizzle + postgres.js app keeps the server's URLs (postgres.js takes
	// no CA from a URL) and verifies with ssl: { ca } from PGSSLROOTCERT.
	jsapp := u.in(t.TempDir())
	cliWriteFiles(t, jsapp.dir, map[string]string{"package.json": `{"dependencies":{"drizzle-orm":"0.44.0","postgres":"^3.4.10"}}`})
	jr := jsapp.expect(0, "env", "pull", "--project", p["id"].(string))
	if !strings.Contains(jr.stderr, "postgres.js takes no CA from a URL") {
		t.Fatalf("env pull for postgres.js printed no note: %s", jr.stderr)
	}
	jenv := cliDotenv(t, filepath.Join(jsapp.dir, ".env"))
	jca := filepath.Join(jsapp.dir, ".capydb", "ca.crt")
	if jenv["DATABASE_URL"] != pooled || jenv["DATABASE_DIRECT_URL"] != direct || jenv["PGSSLROOTCERT"] != jca {
		t.Fatalf("env pull for postgres.js wrote %v", redactAll(jenv))
	}
	for i, r := range postgresJSConnect(t, jenv["PGSSLROOTCERT"], jenv["DATABASE_URL"], jenv["DATABASE_DIRECT_URL"]) {
		if !r.OK || r.User != role || r.Answer != 42 {
			t.Fatalf("postgres.js with ssl.ca on URL %d: %+v", i, r)
		}
	}
	if r := postgresJSConnect(t, otherCA, direct)[0]; r.OK || !tlsVerifyCode(r.Code) {
		t.Fatalf("postgres.js with a wrong CA: %+v", r)
	}
	// Why not the libpq form: postgres.js verifies verify-full against Node's
	// own roots and sends sslrootcert to the server as a setting.
	if r := postgresJSConnect(t, "-", verifying(direct, jca))[0]; r.OK {
		t.Fatalf("postgres.js accepted the libpq-form URL: %+v", r)
	} else {
		t.Logf("postgres.js on the libpq-form URL fails as expected: %s %s", r.Code, r.Message)
	}

	// connection-string --ca-file writes the CA and prints a verifying URL.
	r := app.expect(0, "connection-string", "--pooled", "--show-secrets", "--ca-file", "copy/ca.pem")
	copyPath := filepath.Join(app.dir, "copy", "ca.pem")
	if got := strings.TrimSpace(r.stdout); got != verifying(pooled, copyPath) {
		t.Fatalf("connection-string --ca-file printed %s", redact(got))
	}
	if b, err := os.ReadFile(copyPath); err != nil || string(b) != string(caPEM) {
		t.Fatalf("--ca-file did not write the CA: %v", err)
	}
	if out, err := exec.Command("psql", strings.TrimSpace(r.stdout), "-Atc", "select 7").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "7" {
		t.Fatalf("psql with the connection-string --ca-file URL: %v %s", err, out)
	}

	// A Next.js + Prisma app: Prisma's engines take the CA as sslcert with
	// sslaccept=strict; @prisma/adapter-pg (node-postgres) reads sslrootcert.
	papp := u.in(t.TempDir())
	cliWriteFiles(t, papp.dir, map[string]string{"package.json": `{"dependencies":{"next":"15.0.0","@prisma/client":"6.0.0"}}`,
		"prisma/schema.prisma": "datasource db {\n  provider = \"postgresql\"\n  url = env(\"DATABASE_URL\")\n  directUrl = env(\"DIRECT_URL\")\n}\n"})
	papp.expect(0, "env", "pull", "--project", p["id"].(string))
	pca := filepath.Join(papp.dir, ".capydb", "ca.crt")
	penv := cliDotenv(t, filepath.Join(papp.dir, ".env.local"))
	prisma := func(u string) string {
		return strings.Replace(u, "sslmode=require", "sslmode=require&sslaccept=strict&sslcert="+pca+"&sslrootcert="+pca, 1)
	}
	if penv["DATABASE_URL"] != prisma(pooled) || penv["DIRECT_URL"] != prisma(direct) ||
		penv["DATABASE_DIRECT_URL"] != verifying(direct, pca) || penv["PGSSLROOTCERT"] != pca {
		t.Fatalf("env pull for Prisma wrote %v", redactAll(penv))
	}
	for i, r := range nodeConnect(t, penv["DATABASE_URL"], penv["DIRECT_URL"]) {
		if !r.OK || r.User != role {
			t.Fatalf("node-postgres (adapter-pg) on Prisma URL %d: %+v", i, r)
		}
	}
}

// TestTLSOperatorCertificate: --tls-cert/--tls-key/--tls-ca are served on
// both ports and at /v1/ca.pem; a new pair is picked up without a restart
// (open sessions survive); a mismatched pair is refused and the old one
// stays; a bad pair at start is a clear error.
func TestTLSOperatorCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPath, keyPath, caPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "ca.crt")
	ca, caKey, caPEM := newTestCA(t, "Operator test CA")
	certA, keyA, serialA := newTestLeaf(t, ca, caKey)
	certB, keyB, serialB := newTestLeaf(t, ca, caKey)
	writeAtomic(t, caPath, caPEM)
	writeAtomic(t, keyPath, keyA)
	writeAtomic(t, certPath, certA)

	// A pair that does not match is refused at start, before anything runs.
	bad := exec.Command(binary, "server", "--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0",
		"--direct-port", fmt.Sprint(freePort(t)), "--pooled-port", fmt.Sprint(freePort(t)),
		"--tls-cert", certPath, "--tls-key", writeTemp(t, keyB))
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "--tls-cert and --tls-key are not a usable pair") {
		t.Fatalf("server with a mismatched pair: %v\n%s", err, out)
	}

	s := startServer(t, "", 0, 0, "--tls-cert", certPath, "--tls-key", keyPath, "--tls-ca", caPath, "--tls-reload-interval", "200ms")
	resp, err := http.Get(s.url + "/v1/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(served) != string(caPEM) {
		t.Fatalf("/v1/ca.pem with --tls-ca: %d", resp.StatusCode)
	}
	p := s.createProject(map[string]any{"name": "Operator TLS"})
	conns := s.must(200, "GET", "/v1/projects/"+p["id"].(string)+"/connections", nil)
	urls := []string{verifying(conns.str("connections", "direct_url"), caPath), verifying(conns.str("connections", "pooled_url"), caPath)}
	expectSerial := func(what string, want *big.Int) {
		t.Helper()
		for _, u := range urls {
			if got := peerSerial(t, u); got.Cmp(want) != 0 {
				t.Fatalf("%s: %s presents serial %X, want %X", what, redact(u), got, want)
			}
		}
	}
	expectSerial("operator certificate A", serialA)
	open, err := connect(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(context.Background())

	// Swap to B: new connections on both ports see it, no restart.
	writeAtomic(t, keyPath, keyB)
	writeAtomic(t, certPath, certB)
	eventuallySerial(t, urls, serialB)
	var one int
	if err := open.QueryRow(context.Background(), "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("a session opened before the swap broke: %v", err)
	}
	want := fmt.Sprintf("%X", serialB)
	for _, r := range nodeConnect(t, urls...) {
		if !r.OK || !strings.EqualFold(strings.TrimLeft(r.Serial, "0"), want) {
			t.Fatalf("node-postgres after the swap: %+v, want serial %s", r, want)
		}
	}

	// A's certificate with B's key: refused, B stays.
	writeAtomic(t, certPath, certA)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.logText(), "the new operator certificate was refused") {
		if time.Now().After(deadline) {
			t.Fatal("a mismatched pair was not reported in the log")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(s.logText(), "private key does not match public key") {
		t.Fatal("the refusal does not say why")
	}
	expectSerial("after a refused mismatched pair", serialB)

	// Completing the pair installs A again.
	writeAtomic(t, keyPath, keyA)
	eventuallySerial(t, urls, serialA)
}

func eventuallySerial(t *testing.T, urls []string, want *big.Int) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		done := true
		for _, u := range urls {
			if peerSerial(t, u).Cmp(want) != 0 {
				done = false
			}
		}
		if done {
			t.Logf("both ports present serial %X %s after the files changed (reload interval 200ms)", want, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("new connections do not present serial %X after 20 s", want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// peerSerial connects with verify-full and returns the serial of the
// certificate the server presented.
func peerSerial(t *testing.T, raw string) *big.Int {
	t.Helper()
	c, err := connect(raw)
	if err != nil {
		t.Fatalf("connect %s: %v", redact(raw), err)
	}
	defer c.Close(context.Background())
	tc, ok := c.PgConn().Conn().(*tls.Conn)
	if !ok {
		t.Fatalf("%s: not a TLS connection", redact(raw))
	}
	return tc.ConnectionState().PeerCertificates[0].SerialNumber
}

// tlsVerifyCode reports whether a node error code is a failed certificate check.
func tlsVerifyCode(code string) bool {
	switch code {
	case "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "DEPTH_ZERO_SELF_SIGNED_CERT":
		return true
	}
	return false
}

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("no PEM block in %q", b)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newTestCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// newTestLeaf issues a server certificate for 127.0.0.1, ::1 and localhost.
func newTestLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte, serial *big.Int) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), serial
}

// writeAtomic replaces path the way certificate tooling does (rename).
func writeAtomic(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.pem")
	writeAtomic(t, p, b)
	return p
}

func redactAll(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = redact(v)
	}
	return out
}
