// Package secretbox encrypts secrets at rest (database passwords, webhook
// secrets, ...) with AES-256-GCM, so a copy of the metadata database alone
// does not reveal them.
//
// Sealed values are self-describing: a version byte, a random 96-bit nonce
// and the GCM ciphertext with its tag. The version byte leaves room for a
// future key rotation or algorithm change without guessing formats.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	// KeySize is the AES-256 key length in bytes.
	KeySize = 32
	// EnvKey names the environment variable that, when set, supplies the key
	// instead of the key file (useful with container secret managers).
	EnvKey = "CAPYDB_SECRET_KEY"
	// KeyFile is the name of the key file inside the data directory.
	KeyFile = "secret.key"

	version1  = 0x01
	nonceSize = 12
	tagSize   = 16
	// Overhead is how many bytes Seal adds to the plaintext.
	Overhead = 1 + nonceSize + tagSize
)

var (
	// ErrInvalidKey is returned by New for a key that is not KeySize bytes.
	ErrInvalidKey = errors.New("secretbox: key must be 32 bytes")
	// ErrUnsupportedVersion is returned by Open for a value sealed in a
	// format this build does not know.
	ErrUnsupportedVersion = errors.New("secretbox: unsupported sealed format version")
	// ErrOpen is returned by Open when the value is truncated, was modified,
	// or was sealed with another key. GCM cannot tell these apart.
	ErrOpen = errors.New("secretbox: cannot decrypt: value is corrupt or was sealed with a different key")
)

// LoadKey returns the 32-byte master key.
//
// If CAPYDB_SECRET_KEY is set and non-empty it must hold the key as standard
// base64 or hex; nothing is written to disk in that case. Otherwise the key is
// read from <dataDir>/secret.key (base64), which is generated on first use.
// An empty variable counts as unset, because container tooling often exports
// variables with empty values.
func LoadKey(dataDir string) ([]byte, error) {
	if v := strings.TrimSpace(os.Getenv(EnvKey)); v != "" {
		return parseEnvKey(v)
	}
	if dataDir == "" {
		return nil, fmt.Errorf("secretbox: no data directory for %s and %s is not set", KeyFile, EnvKey)
	}
	return loadOrCreateKeyFile(filepath.Join(dataDir, KeyFile))
}

// parseEnvKey accepts base64 (44 characters) or hex (64 characters). The two
// cannot be confused: 64 hex characters decode as base64 to 48 bytes. The
// value itself never appears in errors.
func parseEnvKey(v string) ([]byte, error) {
	if k, err := base64.StdEncoding.DecodeString(v); err == nil && len(k) == KeySize {
		return k, nil
	}
	if k, err := hex.DecodeString(v); err == nil && len(k) == KeySize {
		return k, nil
	}
	return nil, fmt.Errorf("secretbox: %s must be exactly %d bytes encoded as standard base64 (44 characters) or hex (64 characters); got a %d-character value that is neither (generate one with: openssl rand -base64 32)",
		EnvKey, KeySize, len(v))
}

func loadOrCreateKeyFile(path string) ([]byte, error) {
	key, err := readKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("secretbox: create data directory: %w", err)
	}
	key = make([]byte, KeySize)
	_, _ = rand.Read(key) // crypto/rand does not fail on supported platforms
	created, err := createExclusive(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
	if err != nil {
		return nil, fmt.Errorf("secretbox: create key file %s: %w", path, err)
	}
	if !created {
		// Another process won the race; use its key, never overwrite it.
		return readKeyFile(path)
	}
	return key, nil
}

// readKeyFile refuses group/world-accessible files like ssh does with private
// keys: a readable key defeats the point of encrypting at rest.
func readKeyFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secretbox: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secretbox: key file %s has permissions %04o and is accessible by group or others; run: chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("secretbox: key file %s must contain %d bytes in standard base64", path, KeySize)
	}
	return key, nil
}

// createExclusive writes data to path only if path does not exist, and never
// exposes a partially written file: the data goes to a temporary file first
// and is hard-linked into place (link fails if the target exists, unlike
// rename). It reports false if path already existed.
func createExclusive(path string, data []byte) (bool, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".secret.key.tmp-*") // mode 0600
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	syncDir(dir)
	return true, nil
}

// syncDir makes the new directory entry durable; failure is not fatal since
// the key has already been written and synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Box seals and opens values with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, ErrInvalidKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext as version byte || nonce || ciphertext+tag. The
// version byte is authenticated as additional data so it cannot be swapped.
// Random 96-bit nonces are safe for far more values than capydb will seal
// with one key (the NIST limit is 2^32).
func (b *Box) Seal(plaintext []byte) []byte {
	out := make([]byte, 1+nonceSize, Overhead+len(plaintext))
	out[0] = version1
	_, _ = rand.Read(out[1:]) // crypto/rand does not fail on supported platforms
	return b.aead.Seal(out, out[1:1+nonceSize], plaintext, out[:1])
}

// Open decrypts a value produced by Seal.
func (b *Box) Open(sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, ErrOpen
	}
	if sealed[0] != version1 {
		return nil, ErrUnsupportedVersion
	}
	if len(sealed) < Overhead {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], sealed[:1])
	if err != nil {
		return nil, ErrOpen
	}
	if pt == nil {
		pt = []byte{} // an empty secret is still a successful open
	}
	return pt, nil
}

// SealString seals s and returns it as standard base64, for TEXT columns and
// JSON.
func (b *Box) SealString(s string) string {
	return base64.StdEncoding.EncodeToString(b.Seal([]byte(s)))
}

// OpenString reverses SealString.
func (b *Box) OpenString(s string) (string, error) {
	sealed, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", ErrOpen
	}
	pt, err := b.Open(sealed)
	if err != nil {
		return "", err
	}
	return string(pt), nil
}
