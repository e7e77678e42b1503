package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/capydb/capydb/internal/api"
	"github.com/capydb/capydb/internal/auth"
)

// accessSettings are the parsed access-control options.
type accessSettings struct {
	limits  map[string]auth.RateLimit
	proxies []netip.Prefix
}

func (c *Config) validateAccess() error {
	_, err := c.access()
	if err != nil {
		return err
	}
	if c.OIDCIssuer == "" && (c.OIDCJWKSURL != "" || c.OIDCAudience != "" || c.OIDCClientID != "") {
		return fmt.Errorf("--oidc-jwks-url, --oidc-audience and --oidc-client-id need --oidc-issuer")
	}
	if c.OIDCClientSecret != "" && c.OIDCClientID == "" {
		return fmt.Errorf("--oidc-client-secret needs --oidc-client-id")
	}
	return nil
}

func (c *Config) access() (accessSettings, error) {
	var a accessSettings
	var err error
	if a.proxies, err = auth.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return a, err
	}
	a.limits = map[string]auth.RateLimit{}
	for bucket, v := range c.RateLimits {
		if v == "" {
			continue
		}
		if _, ok := auth.DefaultRateLimits()[bucket]; !ok {
			return a, fmt.Errorf("unknown rate-limit bucket %q", bucket)
		}
		if a.limits[bucket], err = auth.ParseRateLimit(v); err != nil {
			return a, fmt.Errorf("--rate-limit-%s: %w", bucket, err)
		}
	}
	return a, nil
}

// newOIDC builds the session verifier when an issuer is configured (nil otherwise).
func newOIDC(ctx context.Context, c Config, log *slog.Logger) (*auth.OIDC, error) {
	if c.OIDCIssuer == "" {
		return nil, nil
	}
	o, err := auth.NewOIDC(ctx, auth.OIDCConfig{Issuer: c.OIDCIssuer, JWKSURL: c.OIDCJWKSURL, Audience: c.OIDCAudience, Log: log})
	if err != nil {
		return nil, err
	}
	log.Info("human sessions enabled", "issuer", c.OIDCIssuer, "jwks_url", o.JWKSURL(), "audience", c.OIDCAudience)
	return o, nil
}

// oidcClient is the dashboard's OIDC sign-in registration (nil: none).
func (c *Config) oidcClient() *api.OIDCClient {
	if c.OIDCIssuer == "" || c.OIDCClientID == "" {
		return nil
	}
	return &api.OIDCClient{Issuer: c.OIDCIssuer, ClientID: c.OIDCClientID, ClientSecret: c.OIDCClientSecret}
}
