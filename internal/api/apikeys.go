package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/wire"
)

// APIKey is the wire form of a key (never the plaintext).
type APIKey = wire.APIKey

func toAPIKey(k *store.APIKey, now time.Time) *APIKey {
	scopes := k.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return &APIKey{
		ID: k.ID, OrganizationID: k.OrganizationID, Name: k.Name, KeyPrefix: k.KeyPrefix, Scopes: scopes,
		ProjectID: k.ProjectID, Source: k.Source, DeviceName: k.DeviceName, CreatedByUserID: k.CreatedByUserID,
		ExpiresAt: utcp(k.ExpiresAt), LastUsedAt: utcp(k.LastUsedAt), RevokedAt: utcp(k.RevokedAt),
		IsActive:  k.RevokedAt == nil && (k.ExpiresAt == nil || k.ExpiresAt.After(now)),
		CreatedAt: k.CreatedAt.UTC(),
	}
}

// OrgPath names an organization.
type OrgPath struct {
	OrgID string `path:"orgID"`
}

// APIKeysOutput is {api_keys}.
type APIKeysOutput struct {
	Body struct {
		APIKeys []*APIKey `json:"api_keys"`
	}
}

// CreateAPIKeyBody is POST /v1/organizations/{orgID}/api-keys.
type CreateAPIKeyBody = wire.CreateAPIKeyBody

// CreateAPIKeyInput wraps it.
type CreateAPIKeyInput struct {
	OrgID string `path:"orgID"`
	Body  CreateAPIKeyBody
}

// CreateAPIKeyOutput is {api_key, plaintext_api_key}.
type CreateAPIKeyOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		APIKey          *APIKey `json:"api_key"`
		PlaintextAPIKey string  `json:"plaintext_api_key"`
	}
}

// RevokeAPIKeyInput is DELETE /v1/organizations/{orgID}/api-keys/{keyID}.
type RevokeAPIKeyInput struct {
	OrgID string `path:"orgID"`
	KeyID string `path:"keyID"`
}

// RevokedOutput is {revoked: true}.
type RevokedOutput struct {
	Body struct {
		Revoked bool `json:"revoked"`
	}
}

// registerAccess adds the access-control routes (this file and its siblings).
func (s *Server) registerAccess() {
	s.registerAPIKeys()
	s.registerOrganizations()
	s.registerCLILogin()
	s.registerAudit()
	s.registerProjectSettings()
	s.registerNetwork()
}

func (s *Server) registerAPIKeys() {
	tags := []string{"api-keys"}
	register(s, opSpec{AccessRule: AccessRule{OperationID: "listApiKeys", Method: http.MethodGet,
		Path: "/v1/organizations/{orgID}/api-keys", Scope: auth.ScopeAPIKeysRead, OrgKeyOnly: true},
		Summary: "List API keys", Tags: tags},
		func(ctx context.Context, _ *OrgPath) (*APIKeysOutput, error) {
			keys, err := store.ListAPIKeys(ctx, s.deps.Store.Pool, principal(ctx).OrganizationID)
			if err != nil {
				return nil, s.fail(ctx, err, "")
			}
			out := &APIKeysOutput{}
			out.Body.APIKeys = make([]*APIKey, 0, len(keys))
			now := time.Now()
			for _, k := range keys {
				out.Body.APIKeys = append(out.Body.APIKeys, toAPIKey(k, now))
			}
			return out, nil
		})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "createApiKey", Method: http.MethodPost,
		Path: "/v1/organizations/{orgID}/api-keys", Scope: auth.ScopeAPIKeysWrite, OrgKeyOnly: true, AdminOnly: true},
		Status: http.StatusCreated, Summary: "Create an API key (the plaintext is shown only here)", Tags: tags}, s.createAPIKey)
	register(s, opSpec{AccessRule: AccessRule{OperationID: "revokeApiKey", Method: http.MethodDelete,
		Path: "/v1/organizations/{orgID}/api-keys/{keyID}", Scope: auth.ScopeAPIKeysWrite, OrgKeyOnly: true, AdminOnly: true},
		Summary: "Revoke an API key", Tags: tags},
		func(ctx context.Context, in *RevokeAPIKeyInput) (*RevokedOutput, error) {
			if err := auth.RevokeKey(ctx, s.deps.Store, principal(ctx), in.KeyID); err != nil {
				return nil, s.fail(ctx, err, "api key not found")
			}
			out := &RevokedOutput{}
			out.Body.Revoked = true
			return out, nil
		})
}

func (s *Server) createAPIKey(ctx context.Context, in *CreateAPIKeyInput) (*CreateAPIKeyOutput, error) {
	pr := principal(ctx)
	b := in.Body
	name := strings.TrimSpace(b.Name)
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return nil, errorf(http.StatusBadRequest, "name must be 1-100 characters")
	}
	if err := checkKeyNames(name, b.DeviceName); err != nil {
		return nil, err
	}
	scopes, err := auth.NormalizeScopes(b.Scopes, b.ProjectID != "")
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%s", err.Error())
	}
	k := &store.APIKey{OrganizationID: pr.OrganizationID, Name: name, Scopes: scopes, Source: auth.KeySourceAPI}
	if b.ProjectID != "" {
		if _, err := store.GetProject(ctx, s.deps.Store.Pool, pr.OrganizationID, b.ProjectID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return nil, errorf(http.StatusBadRequest, "project_id %q does not name a project of this organization", b.ProjectID)
			}
			return nil, s.fail(ctx, err, "")
		}
		k.ProjectID = &b.ProjectID
	}
	if b.ExpiresAt != nil {
		if !b.ExpiresAt.After(time.Now()) {
			return nil, errorf(http.StatusBadRequest, "expires_at must be in the future")
		}
		k.ExpiresAt = b.ExpiresAt
	}
	if b.DeviceName != "" {
		k.DeviceName = &b.DeviceName
	}
	if scope := pr.FirstUngrantable(scopes); scope != "" {
		return nil, errorf(http.StatusForbidden, "cannot grant scope %s", scope)
	}
	if pr.AuthSource == auth.SourceSession {
		k.Source = auth.KeySourceDashboard
		if pr.UserID != "" {
			k.CreatedByUserID = &pr.UserID
		}
	}
	plain, err := auth.CreateKey(ctx, s.deps.Store, k, pr.Actor())
	if err != nil {
		return nil, s.fail(ctx, err, "")
	}
	out := &CreateAPIKeyOutput{CacheControl: "no-store"}
	out.Body.APIKey = toAPIKey(k, time.Now())
	out.Body.PlaintextAPIKey = plain
	return out, nil
}

// checkKeyNames refuses the device_name of a key to mint when it is too long,
// and its name or device_name when they hold an invisible character: both are
// shown in key lists and on the approval page, where a bidi override could
// disguise them. The caller checks the name's length (required or not).
func checkKeyNames(name, deviceName string) error {
	if utf8.RuneCountInString(deviceName) > 100 {
		return errorf(http.StatusBadRequest, "device_name must be at most 100 characters")
	}
	if lifecycle.HasInvisible(name) || lifecycle.HasInvisible(deviceName) {
		return errorf(http.StatusBadRequest, "name and device_name must not contain control or invisible format characters")
	}
	return nil
}
