package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"

	"github.com/capydb/capydb/internal/store"
)

// SupabaseTokenPrefix starts the access tokens Supabase's CLI accepts
// (^sbp_[a-f0-9]{40}$); CapyDB mints them as aliases of its API keys.
const SupabaseTokenPrefix = "sbp_"

var supabaseToken = regexp.MustCompile(`^sbp_[a-f0-9]{40}$`)

// MintSupabaseToken makes an sbp_ alias of the API key keyID (stored as
// hashes only); it works while the key does.
func MintSupabaseToken(ctx context.Context, db store.DB, keyID string) (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := SupabaseTokenPrefix + hex.EncodeToString(b)
	if err := store.InsertSupabaseToken(ctx, db, HashKey(tok), keyID); err != nil {
		return "", err
	}
	return tok, nil
}

// SupabaseToken resolves an sbp_ alias to its API key's principal.
func (a *Authenticator) SupabaseToken(ctx context.Context, plaintext string) (*Principal, error) {
	if !supabaseToken.MatchString(plaintext) {
		return nil, ErrUnauthenticated
	}
	kh, err := store.SupabaseTokenKey(ctx, a.Store.Pool, HashKey(plaintext))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	return a.apiKeyByHash(ctx, kh)
}
