// Package scram computes and checks the SCRAM-SHA-256 secrets Postgres
// stores, so CapyDB sends a verifier and never a plaintext password.
package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// scramIterations matches Postgres' default scram_iterations.
const scramIterations = 4096

// Verifier computes the SCRAM-SHA-256 secret Postgres stores for a
// password. Sending the verifier instead of the plaintext keeps passwords out
// of server logs and pg_stat_statements.
func Verifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

// Matches reports whether a stored SCRAM-SHA-256 secret was made from
// password, so an idempotent retry can keep the secret instead of minting a
// new salt (which would churn the pooler's auth file for nothing).
func Matches(verifier, password string) bool {
	rest, ok := strings.CutPrefix(verifier, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	head, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iterStr, saltB64, ok := strings.Cut(head, ":")
	if !ok {
		return false
	}
	iter, err := strconv.Atoi(iterStr)
	if err != nil || iter <= 0 {
		return false
	}
	storedB64, serverB64, ok := strings.Cut(keys, ":")
	if !ok {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltB64)
	stored, err2 := base64.StdEncoding.DecodeString(storedB64)
	server, err3 := base64.StdEncoding.DecodeString(serverB64)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return false
	}
	wantStored := sha256.Sum256(hmacSHA256(salted, "Client Key"))
	return hmac.Equal(wantStored[:], stored) && hmac.Equal(hmacSHA256(salted, "Server Key"), server)
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
