// Package scripts holds tests of the shell scripts next to this file.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debianMirror runs ensure-deps.sh's debian_mirror against a fake /etc.
func debianMirror(t *testing.T, files map[string]string) (string, error) {
	t.Helper()
	etc := t.TempDir()
	for name, body := range files {
		p := filepath.Join(etc, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "-c", `source ./ensure-deps.sh && debian_mirror`)
	cmd.Env = append(os.Environ(), "ENSURE_DEPS_ETC="+etc)
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// The pgbouncer source is fetched from the mirror the machine already
// uses: the entry for its own release, not -security or -updates, not a
// disabled stanza, whatever the sources format.
func TestDebianMirror(t *testing.T) {
	osRelease := "ID=debian\nVERSION_CODENAME=bookworm\n"
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"deb822", map[string]string{
			"os-release": osRelease,
			"apt/sources.list.d/debian.sources": "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n\n" +
				"Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\nEnabled: no\n\n" +
				"Types: deb\n# comment\nURIs: https://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
		}, "https://mirror.example/debian"},
		{"one-line", map[string]string{
			"os-release": osRelease,
			"apt/sources.list": "# deb http://commented.example/debian bookworm main\n" +
				"deb http://security.debian.org/debian-security bookworm-security main\n" +
				"deb [arch=amd64 signed-by=/k.gpg] http://ftp.example.org/debian bookworm main contrib\n",
		}, "http://ftp.example.org/debian"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := debianMirror(t, c.files)
			if err != nil || got != c.want {
				t.Fatalf("debian_mirror = %q, %v; want %q", got, err, c.want)
			}
		})
	}
	// No entry for the release: an error, not a guessed mirror.
	got, err := debianMirror(t, map[string]string{"os-release": osRelease,
		"apt/sources.list": "deb http://security.debian.org/debian-security bookworm-security main\n"})
	if err == nil || got != "" {
		t.Fatalf("without a bookworm entry: %q, %v; want an error", got, err)
	}
}
