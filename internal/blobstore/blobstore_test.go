package blobstore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), "file://"+t.TempDir()+"/b", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestKeys(t *testing.T) {
	good := Key("prj_01abc", "backups", "bkp_01xyz")
	if good != "projects/prj_01abc/backups/bkp_01xyz.dump" || !ValidKey(good) || ProjectOf(good) != "prj_01abc" {
		t.Fatalf("key %q", good)
	}
	for _, bad := range []string{"", "../etc/passwd", "projects/prj_1/backups/../../x.dump", "projects/prj_1/other/bkp_1.dump",
		"projects/prj_1/backups/bkp_1.dump/..", "/projects/prj_1/backups/bkp_1.dump", "projects/prj_1/backups/bkp_1.dump\x00"} {
		if ValidKey(bad) {
			t.Errorf("ValidKey(%q) = true", bad)
		}
	}
}

func TestPutFetchChecksum(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	key := Key("prj_1", "backups", "bkp_1")
	var ticks int64
	art, err := s.Put(ctx, key, strings.NewReader("hello world"), func(n int64) { ticks = n })
	if err != nil {
		t.Fatal(err)
	}
	if art.Size != 11 || art.SHA256 != "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9" || ticks != 11 {
		t.Fatalf("artifact %+v ticks %d", art, ticks)
	}
	var buf bytes.Buffer
	if err := s.Fetch(ctx, key, &buf, art); err != nil || buf.String() != "hello world" {
		t.Fatalf("fetch %q %v", buf.String(), err)
	}
	if err := s.FlipByte(ctx, key, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.Fetch(ctx, key, &bytes.Buffer{}, art); !errors.Is(err, ErrChecksumMismatch) {
		t.Fatalf("corrupted fetch: %v", err)
	}
	if _, err := s.Put(ctx, "../x", strings.NewReader("x"), nil); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("bad key put: %v", err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if err := s.Fetch(ctx, key, &bytes.Buffer{}, art); !errors.Is(err, ErrNotFound) {
		t.Fatalf("fetch of a deleted key: %v", err)
	}
}

func TestGrants(t *testing.T) {
	s := open(t)
	now := time.Now()
	g := Grant{Action: "get", Key: Key("prj_1", "exports", "exp_1"), ProjectID: "prj_1", Expires: now.Add(time.Minute).Unix()}
	tok := s.Sign(g)
	got, err := s.Verify(tok, "get", now)
	if err != nil || got != g {
		t.Fatalf("verify %+v %v", got, err)
	}
	if _, err := s.Verify(tok, "put", now); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("wrong action: %v", err)
	}
	if _, err := s.Verify(tok, "get", now.Add(2*time.Minute)); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := s.Verify(tok[:len(tok)-2]+"xx", "get", now); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("tampered: %v", err)
	}
	other, _ := Open(context.Background(), "mem://", []byte("other secret"))
	if _, err := other.Verify(tok, "get", now); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("other key: %v", err)
	}
}

// An object store presigns its own URLs (computed locally; no request is made).
func TestS3Presigns(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	s, err := Open(context.Background(), "s3://capydb-backups?region=us-east-1", []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Presigns {
		t.Fatal("s3 store should presign")
	}
	u, err := s.PresignedURL(context.Background(), Key("prj_1", "exports", "exp_1"), "GET", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "capydb-backups") || !strings.Contains(u, "X-Amz-Signature=") || !strings.Contains(u, "X-Amz-Expires=900") {
		t.Fatalf("presigned URL %s", u)
	}
}
