package localcluster

import (
	"bufio"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Certificates renew before they expire, and children die with the process.

func TestTLSRenewal(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	if err := ensureTLS(dir, "127.0.0.1", log); err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	srv1, _ := os.ReadFile(filepath.Join(dir, "server.crt"))
	if err := ensureTLS(dir, "127.0.0.1", log); err != nil {
		t.Fatal(err)
	}
	if srv, _ := os.ReadFile(filepath.Join(dir, "server.crt")); string(srv) != string(srv1) {
		t.Fatal("server cert regenerated without reason")
	}
	if err := ensureTLS(dir, "db.example.com", log); err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	srv2, _ := os.ReadFile(filepath.Join(dir, "server.crt"))
	if string(ca1) != string(ca2) || string(srv1) == string(srv2) {
		t.Fatal("expected same CA, new server cert")
	}
	blk, _ := pem.Decode(srv2)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname("db.example.com"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := cert.VerifyHostname(h); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"ca.key", "server.key"} {
		fi, _ := os.Stat(filepath.Join(dir, f))
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", f, fi.Mode())
		}
	}
	if p := randomPassword(32); len(p) != 32 || strings.Trim(p, base62) != "" {
		t.Fatalf("password %q", p)
	}
}

func TestChildrenDieWithParent(t *testing.T) {
	dir := tempDataDir(t)
	ports := freePorts(t, 3)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CAPYDB_LC_HELPER_DIR="+dir,
		"CAPYDB_LC_HELPER_DIRECT="+strconv.Itoa(ports[0]), "CAPYDB_LC_HELPER_POOLED="+strconv.Itoa(ports[1]),
		"CAPYDB_LC_HELPER_SESSION="+strconv.Itoa(ports[2]))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "PIDS ") {
		t.Fatalf("helper: %q %v", line, err)
	}
	var pgPid, bouncerPid int
	fmt.Sscanf(line, "PIDS %d %d", &pgPid, &bouncerPid)
	if !pidAlive(pgPid) || !pidAlive(bouncerPid) {
		t.Fatal("children not running")
	}
	// SIGKILL gives the parent no chance to clean up: only Pdeathsig helps.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, pid := range []int{pgPid, bouncerPid} {
		if !waitGone(pid, 15*time.Second) {
			t.Fatalf("child %d survived its parent", pid)
		}
	}
}
