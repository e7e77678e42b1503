// Package blobstore keeps backup, export and upload artifacts in a
// gocloud.dev/blob bucket (a directory for file://, an object store in
// production). It owns the key layout, records size and SHA-256 of every
// artifact, and signs the short-lived transfer grants capydb serves itself
// when the bucket cannot presign URLs.
package blobstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// buckets
	_ "gocloud.dev/blob/memblob"  // mem:// buckets (tests)
	_ "gocloud.dev/blob/s3blob"   // s3:// buckets (AWS S3 and S3-compatible stores)
	"gocloud.dev/gcerrors"
)

// Errors callers distinguish.
var (
	ErrNotFound         = errors.New("object not found")
	ErrChecksumMismatch = errors.New("artifact checksum mismatch")
	ErrInvalidKey       = errors.New("invalid object key")
	ErrInvalidToken     = errors.New("invalid transfer token")
	ErrExpiredToken     = errors.New("transfer token has expired")
)

// keyRe is every key the server generates: projects/<project id>/<kind>/<id>.dump.
var keyRe = regexp.MustCompile(`^projects/prj_[A-Za-z0-9]{1,40}/(backups|exports|uploads)/[a-z]{2,4}_[A-Za-z0-9]{1,40}\.dump$`)

// ValidKey reports whether key has the server's layout; anything else
// (user input, path tricks) is refused before it reaches the bucket.
func ValidKey(key string) bool { return keyRe.MatchString(key) }

// Key builds an artifact key from server-generated ids.
func Key(projectID, kind, id string) string {
	return "projects/" + projectID + "/" + kind + "/" + id + ".dump"
}

// ProjectOf returns the project id a valid key belongs to.
func ProjectOf(key string) string {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// Artifact is what is recorded about a stored object.
type Artifact struct {
	Size   int64
	SHA256 string // hex
}

// Store is an open bucket plus the key that signs transfer grants.
type Store struct {
	bucket  *blob.Bucket
	signKey []byte
	// Presigns is true when the bucket mints its own signed URLs (object
	// stores); false for file://, where capydb serves transfers itself.
	Presigns bool
	URL      string
	// TempDir receives downloaded artifacts; "" = the system's temporary
	// directory. The server points it at a private directory it sweeps.
	TempDir string
}

// Open opens the bucket at rawURL (file:// directories are created).
// secret seeds the HMAC key of transfer grants.
func Open(ctx context.Context, rawURL string, secret []byte) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("while parsing the backup URL: %w", err)
	}
	presigns := true
	if u.Scheme == "file" {
		presigns = false
		if err := os.MkdirAll(u.Path, 0o700); err != nil {
			return nil, fmt.Errorf("while creating the backup directory %s: %w", u.Path, err)
		}
		q := u.Query()
		if q.Get("metadata") == "" {
			q.Set("metadata", "skip")
		}
		u.RawQuery = q.Encode()
	}
	if u.Scheme == "mem" {
		presigns = false
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("while opening the backup bucket: %w", err)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("capydb object transfer grants v1"))
	return &Store{bucket: b, signKey: mac.Sum(nil), Presigns: presigns, URL: rawURL}, nil
}

// Close releases the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// Writer streams one artifact into the bucket while counting and hashing it.
type Writer struct {
	w    *blob.Writer
	h    hash.Hash
	n    int64
	tick func(int64)
}

// Write implements io.Writer.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if w.tick != nil {
		w.tick(w.n)
	}
	return n, err
}

// Close commits the object and returns its size and checksum.
func (w *Writer) Close() (Artifact, error) {
	if err := w.w.Close(); err != nil {
		return Artifact{}, fmt.Errorf("while finishing the artifact: %w", err)
	}
	return Artifact{Size: w.n, SHA256: hex.EncodeToString(w.h.Sum(nil))}, nil
}

// NewWriter starts writing key; tick (optional) sees the bytes written so
// far. Cancelling ctx before Close discards the object.
func (s *Store) NewWriter(ctx context.Context, key string, tick func(int64)) (*Writer, error) {
	if !ValidKey(key) {
		return nil, ErrInvalidKey
	}
	w, err := s.bucket.NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return nil, fmt.Errorf("while opening %s for writing: %w", key, err)
	}
	return &Writer{w: w, h: sha256.New(), tick: tick}, nil
}

// Put stores everything r yields under key.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, tick func(int64)) (Artifact, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.NewWriter(wctx, key, tick)
	if err != nil {
		return Artifact{}, err
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		_, _ = w.Close()
		return Artifact{}, err
	}
	return w.Close()
}

// Fetch copies key into dst and checks it against want (size and SHA-256);
// a mismatch is ErrChecksumMismatch.
func (s *Store) Fetch(ctx context.Context, key string, dst io.Writer, want Artifact) error {
	if !ValidKey(key) {
		return ErrInvalidKey
	}
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return ErrNotFound
		}
		return fmt.Errorf("while opening %s: %w", key, err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), r)
	if err != nil {
		return fmt.Errorf("while reading %s: %w", key, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if n != want.Size || got != want.SHA256 {
		return fmt.Errorf("%w: %s is %d bytes with SHA-256 %s, recorded %d bytes with %s",
			ErrChecksumMismatch, key, n, got, want.Size, want.SHA256)
	}
	return nil
}

// FetchNew downloads key into a new temporary file when nothing is recorded
// about it yet (an upload straight to an object store) and returns its path,
// size and checksum; the caller removes the file.
func (s *Store) FetchNew(ctx context.Context, key string, maxBytes int64) (string, Artifact, error) {
	rd, _, err := s.Reader(ctx, key)
	if err != nil {
		return "", Artifact{}, err
	}
	defer rd.Close()
	f, err := os.CreateTemp(s.TempDir, "capydb-artifact-*.dump")
	if err != nil {
		return "", Artifact{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rd, maxBytes+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxBytes {
		err = fmt.Errorf("%s is larger than the allowed %d bytes", key, maxBytes)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", Artifact{}, err
	}
	return f.Name(), Artifact{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// FetchFile downloads key into a new temporary file (checked against want)
// and returns its path; the caller removes it.
func (s *Store) FetchFile(ctx context.Context, key string, want Artifact) (string, error) {
	f, err := os.CreateTemp(s.TempDir, "capydb-artifact-*.dump")
	if err != nil {
		return "", err
	}
	err = s.Fetch(ctx, key, f, want)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Reader opens key for streaming (downloads); the caller closes it.
func (s *Store) Reader(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	if !ValidKey(key) {
		return nil, 0, ErrInvalidKey
	}
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, 0, ErrNotFound
		}
		return nil, 0, err
	}
	return r, r.Size(), nil
}

// Exists reports whether key holds an object.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if !ValidKey(key) {
		return false, ErrInvalidKey
	}
	return s.bucket.Exists(ctx, key)
}

// Delete removes key; a missing object is not an error (retries).
func (s *Store) Delete(ctx context.Context, key string) error {
	if !ValidKey(key) {
		return ErrInvalidKey
	}
	err := s.bucket.Delete(ctx, key)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("while deleting %s: %w", key, err)
	}
	return nil
}

// Grant is what a transfer token allows: one action on one key until Expires.
type Grant struct {
	Action    string `json:"a"` // get or put
	Key       string `json:"k"`
	ProjectID string `json:"p"`
	MaxBytes  int64  `json:"m,omitempty"`
	Filename  string `json:"f,omitempty"`
	Expires   int64  `json:"e"` // unix seconds
}

// Sign renders g as an opaque URL-safe token: payload.mac.
func (s *Store) Sign(g Grant) string {
	b, _ := json.Marshal(g)
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac(p))
}

func (s *Store) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.signKey)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Verify checks a token's signature, action and expiry at now.
func (s *Store) Verify(token, action string, now time.Time) (Grant, error) {
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return Grant{}, ErrInvalidToken
	}
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(want, s.mac(p)) {
		return Grant{}, ErrInvalidToken
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Grant{}, ErrInvalidToken
	}
	var g Grant
	if err := json.Unmarshal(b, &g); err != nil || g.Action != action || !ValidKey(g.Key) {
		return Grant{}, ErrInvalidToken
	}
	if now.Unix() >= g.Expires {
		return g, ErrExpiredToken
	}
	return g, nil
}

// PresignedURL asks the bucket for a signed URL (object stores only).
func (s *Store) PresignedURL(ctx context.Context, key, method string, ttl time.Duration) (string, error) {
	return s.bucket.SignedURL(ctx, key, &blob.SignedURLOptions{Method: method, Expiry: ttl,
		ContentType: map[bool]string{true: "application/octet-stream"}[method == "PUT"]})
}

// FlipByte corrupts one byte of key in place (tests of verification).
func (s *Store) FlipByte(ctx context.Context, key string, offset int64) error {
	r, _, err := s.Reader(ctx, key)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return err
	}
	if offset >= int64(len(b)) {
		offset = int64(len(b)) - 1
	}
	b[offset] ^= 0xff
	return s.bucket.WriteAll(ctx, key, b, nil)
}
