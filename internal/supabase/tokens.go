package supabase

import (
	"context"
	"errors"
	"net/http"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/store"
)

// AccessToken is a minted sbp_ alias.
type AccessToken struct {
	AccessToken string `json:"access_token" doc:"sbp_<40 hex>: shown once; it acts as the API key that minted it (same scopes, project, expiry, revocation)"`
}

func (f *Facade) registerTokens() {
	register(f, Rule{OperationID: "capydb-create-access-token", Method: http.MethodPost, Path: "/v1/capydb/access-tokens"}, http.StatusCreated,
		"† CapyDB addition: mint a Supabase-style access token (sbp_…) for the calling API key, for the Supabase CLI",
		func(ctx context.Context, _ *struct{}) (*struct{ Body AccessToken }, error) {
			p := principal(ctx)
			if p.AuthSource != auth.SourceAPIKey {
				return nil, Errorf(http.StatusForbidden, "only an API key can mint an access token (it becomes the key's alias)")
			}
			tok, err := auth.MintSupabaseToken(ctx, f.deps.Store.Pool, p.APIKeyID)
			if errors.Is(err, store.ErrNotFound) {
				return nil, Errorf(http.StatusUnauthorized, "Unauthorized")
			}
			if err != nil {
				return nil, err
			}
			return &struct{ Body AccessToken }{Body: AccessToken{AccessToken: tok}}, nil
		})
}
