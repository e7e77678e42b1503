package secretbox

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func mustBox(t *testing.T, key []byte) *Box {
	t.Helper()
	b, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := New(make([]byte, n)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("New(%d bytes) error = %v, want ErrInvalidKey", n, err)
		}
	}
	if _, err := New(make([]byte, KeySize)); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	box := mustBox(t, testKey(1))
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", []byte{}},
		{"nil", nil},
		{"short", []byte("hunter2")},
		{"binary", []byte{0, 1, 2, 0xff, 0}},
		{"large", bytes.Repeat([]byte("x"), 1<<16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed := box.Seal(tt.in)
			if len(sealed) != len(tt.in)+Overhead {
				t.Fatalf("sealed length %d, want %d", len(sealed), len(tt.in)+Overhead)
			}
			if sealed[0] != 0x01 {
				t.Fatalf("version byte %#x", sealed[0])
			}
			if len(tt.in) >= 4 && bytes.Contains(sealed, tt.in) {
				t.Fatal("plaintext visible in sealed value")
			}
			got, err := box.Open(sealed)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !bytes.Equal(got, tt.in) {
				t.Fatalf("Open = %q, want %q", got, tt.in)
			}
		})
	}
}

func TestSealIsRandomized(t *testing.T) {
	box := mustBox(t, testKey(1))
	a, b := box.Seal([]byte("same")), box.Seal([]byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical (nonce reuse)")
	}
}

func TestOpenRejects(t *testing.T) {
	box := mustBox(t, testKey(1))
	sealed := box.Seal([]byte("database password"))
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrOpen},
		{"version only", []byte{0x01}, ErrOpen},
		{"truncated below overhead", sealed[:Overhead-1], ErrOpen},
		{"truncated tag", sealed[:len(sealed)-1], ErrOpen},
		{"unknown version", append([]byte{0x02}, sealed[1:]...), ErrUnsupportedVersion},
		{"version zero", append([]byte{0x00}, sealed[1:]...), ErrUnsupportedVersion},
		{"flipped nonce", flip(1), ErrOpen},
		{"flipped ciphertext", flip(1 + nonceSize), ErrOpen},
		{"flipped tag", flip(len(sealed) - 1), ErrOpen},
		{"appended byte", append(bytes.Clone(sealed), 0), ErrOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := box.Open(tt.in)
			if !errors.Is(err, tt.want) || got != nil {
				t.Fatalf("Open = %q, %v; want error %v", got, err, tt.want)
			}
		})
	}
}

func TestWrongKey(t *testing.T) {
	sealed := mustBox(t, testKey(1)).Seal([]byte("secret"))
	if _, err := mustBox(t, testKey(2)).Open(sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("Open with wrong key: %v", err)
	}
}

func TestStrings(t *testing.T) {
	box := mustBox(t, testKey(3))
	for _, s := range []string{"", "p@ss w0rd", "ünïcødé", strings.Repeat("a", 1000)} {
		sealed := box.SealString(s)
		if _, err := base64.StdEncoding.DecodeString(sealed); err != nil {
			t.Fatalf("SealString output is not base64: %v", err)
		}
		got, err := box.OpenString(sealed)
		if err != nil || got != s {
			t.Fatalf("OpenString = %q, %v; want %q", got, err, s)
		}
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte{1, 2, 3})} {
		if _, err := box.OpenString(bad); !errors.Is(err, ErrOpen) {
			t.Errorf("OpenString(%q) error = %v", bad, err)
		}
	}
	other := mustBox(t, testKey(4))
	if _, err := other.OpenString(box.SealString("x")); !errors.Is(err, ErrOpen) {
		t.Fatalf("OpenString with wrong key: %v", err)
	}
}

func TestLoadKeyFromEnv(t *testing.T) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i * 7)
	}
	b64 := base64.StdEncoding.EncodeToString(key)
	hx := hex.EncodeToString(key)
	tests := []struct {
		name    string
		value   string
		want    []byte
		wantErr string
	}{
		{"base64", b64, key, ""},
		{"base64 with whitespace", "  " + b64 + "\n", key, ""},
		{"hex lower", hx, key, ""},
		{"hex upper", strings.ToUpper(hx), key, ""},
		{"base64 too short", base64.StdEncoding.EncodeToString(key[:16]), nil, "exactly 32 bytes"},
		{"base64 too long", base64.StdEncoding.EncodeToString(append(key, 1)), nil, "exactly 32 bytes"},
		{"hex too short", hx[:62], nil, "exactly 32 bytes"},
		{"hex too long", hx + "00", nil, "exactly 32 bytes"},
		{"raw url base64", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), nil, "base64"},
		{"garbage", "correct horse battery staple", nil, "CAPYDB_SECRET_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv(EnvKey, tt.value)
			got, err := LoadKey(dir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want mention of %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), strings.TrimSpace(tt.value)) {
					t.Fatal("error message echoes the key value")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("key = %x, want %x", got, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, KeyFile)); !os.IsNotExist(err) {
				t.Fatal("key file written although the key came from the environment")
			}
		})
	}
}

func TestLoadKeyCreatesFile(t *testing.T) {
	t.Setenv(EnvKey, "") // empty counts as unset
	dir := filepath.Join(t.TempDir(), "nested", "data")
	key, err := LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != KeySize || bytes.Equal(key, make([]byte, KeySize)) {
		t.Fatalf("bad generated key %x", key)
	}
	path := filepath.Join(dir, KeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", perm)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Fatalf("data dir mode %04o, want 0700", perm)
	}
	data, _ := os.ReadFile(path)
	if got, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data))); !bytes.Equal(got, key) {
		t.Fatal("file content does not match returned key")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".secret.key.tmp-*")); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}

	again, err := LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, key) {
		t.Fatal("second LoadKey returned a different key")
	}
}

func TestLoadKeyConcurrentCreate(t *testing.T) {
	t.Setenv(EnvKey, "")
	dir := t.TempDir()
	keys := make([][]byte, 16)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := LoadKey(dir)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("concurrent LoadKey calls returned different keys")
		}
	}
}

func TestLoadKeyFileErrors(t *testing.T) {
	t.Setenv(EnvKey, "")
	good := base64.StdEncoding.EncodeToString(testKey(9))
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		wantErr string
	}{
		{"ok with newline", good + "\n", 0o600, ""},
		{"ok owner read only", good, 0o400, ""},
		{"group readable", good, 0o640, "chmod 600"},
		{"world readable", good, 0o604, "accessible by group or others"},
		{"group writable", good, 0o620, "accessible by group or others"},
		{"not base64", "%%%", 0o600, "standard base64"},
		{"wrong length", base64.StdEncoding.EncodeToString(testKey(9)[:31]), 0o600, "32 bytes"},
		{"empty", "", 0o600, "32 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			key, err := LoadKey(dir)
			if tt.wantErr == "" {
				if err != nil || !bytes.Equal(key, testKey(9)) {
					t.Fatalf("LoadKey = %x, %v", key, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want mention of %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			// The bad file must be left alone, never replaced by a new key.
			if data, _ := os.ReadFile(path); string(data) != tt.content {
				t.Fatal("key file was modified")
			}
		})
	}
}

func TestLoadKeyNotRegular(t *testing.T) {
	t.Setenv(EnvKey, "")
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, KeyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("error = %v", err)
	}
}

func TestLoadKeyNoDataDir(t *testing.T) {
	t.Setenv(EnvKey, "")
	if _, err := LoadKey(""); err == nil {
		t.Fatal("expected an error without data dir or env key")
	}
}

func TestLoadKeyUsableWithNew(t *testing.T) {
	t.Setenv(EnvKey, "")
	dir := t.TempDir()
	k1, err := LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	sealed := mustBox(t, k1).SealString("persisted")
	k2, err := LoadKey(dir) // e.g. after a restart
	if err != nil {
		t.Fatal(err)
	}
	if got, err := mustBox(t, k2).OpenString(sealed); err != nil || got != "persisted" {
		t.Fatalf("OpenString after reload = %q, %v", got, err)
	}
}
