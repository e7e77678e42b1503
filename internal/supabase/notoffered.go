package supabase

import (
	"context"
	"net/http"
)

// notOfferedRoutes are the Supabase routes of features CapyDB does not offer
// (the backend-as-a-service half and the per-project HTTP gateway; note
// §1G). They answer 404 {"message": "<feature> is not offered by CapyDB: <why>"}:
// Supabase's clients treat a 404 on a settings read as "nothing to manage".
var notOfferedRoutes = []struct {
	id, method, path, feature, why string
}{
	{"v1-get-auth-service-config", "GET", "/v1/projects/{ref}/config/auth", "the auth service (GoTrue)", whyBaaS},
	{"v1-update-auth-service-config", "PATCH", "/v1/projects/{ref}/config/auth", "the auth service (GoTrue)", whyBaaS},
	{"v1-list-all-sso-provider", "GET", "/v1/projects/{ref}/config/auth/sso/providers", "SSO providers", whyBaaS},
	{"v1-create-a-sso-provider", "POST", "/v1/projects/{ref}/config/auth/sso/providers", "SSO providers", whyBaaS},
	{"v1-get-a-sso-provider", "GET", "/v1/projects/{ref}/config/auth/sso/providers/{provider_id}", "SSO providers", whyBaaS},
	{"v1-update-a-sso-provider", "PUT", "/v1/projects/{ref}/config/auth/sso/providers/{provider_id}", "SSO providers", whyBaaS},
	{"v1-delete-a-sso-provider", "DELETE", "/v1/projects/{ref}/config/auth/sso/providers/{provider_id}", "SSO providers", whyBaaS},
	{"v1-list-all-functions", "GET", "/v1/projects/{ref}/functions", "edge functions", whyBaaS},
	{"v1-get-a-function", "GET", "/v1/projects/{ref}/functions/{function_slug}", "edge functions", whyBaaS},
	{"v1-get-a-function-body", "GET", "/v1/projects/{ref}/functions/{function_slug}/body", "edge functions", whyBaaS},
	{"v1-update-a-function", "PATCH", "/v1/projects/{ref}/functions/{function_slug}", "edge functions", whyBaaS},
	{"v1-delete-a-function", "DELETE", "/v1/projects/{ref}/functions/{function_slug}", "edge functions", whyBaaS},
	{"v1-list-all-secrets", "GET", "/v1/projects/{ref}/secrets", "edge function secrets", whyBaaS},
	{"v1-bulk-create-secrets", "POST", "/v1/projects/{ref}/secrets", "edge function secrets", whyBaaS},
	{"v1-bulk-delete-secrets", "DELETE", "/v1/projects/{ref}/secrets", "edge function secrets", whyBaaS},
	{"v1-update-postgrest-service-config", "PATCH", "/v1/projects/{ref}/postgrest", "the Data API (PostgREST)", whyBaaS},
	{"v1-get-pgsodium-config", "GET", "/v1/projects/{ref}/pgsodium", "pgsodium", "it is not packaged for Debian's PostgreSQL 15"},
	{"v1-update-pgsodium-config", "PUT", "/v1/projects/{ref}/pgsodium", "pgsodium", "it is not packaged for Debian's PostgreSQL 15"},
	{"v1-get-project-api-keys", "GET", "/v1/projects/{ref}/api-keys", "anon and service_role API keys", "they are Data API/auth client keys; use CapyDB API keys and the database URLs"},
	{"v1-list-all-buckets", "GET", "/v1/projects/{ref}/storage/buckets", "storage", whyBaaS},
	{"v1-enable-database-webhook", "POST", "/v1/projects/{ref}/database/webhooks/enable", "database webhooks (pg_net)", "pg_net is not packaged for Debian; CapyDB's own webhooks (/api/capydb/v1/organizations/{id}/webhooks) report platform events"},
	{"v1-get-hostname-config", "GET", "/v1/projects/{ref}/custom-hostname", "custom hostnames", whyGateway},
	{"v1-verify-dns-config", "POST", "/v1/projects/{ref}/custom-hostname/initialize", "custom hostnames", whyGateway},
	{"v1-update-hostname-config", "POST", "/v1/projects/{ref}/custom-hostname/reverify", "custom hostnames", whyGateway},
	{"v1-activate-custom-hostname", "POST", "/v1/projects/{ref}/custom-hostname/activate", "custom hostnames", whyGateway},
	{"v1-get-vanity-subdomain-config", "GET", "/v1/projects/{ref}/vanity-subdomain", "vanity subdomains", whyGateway},
	{"v1-check-vanity-subdomain-availability", "POST", "/v1/projects/{ref}/vanity-subdomain/check-availability", "vanity subdomains", whyGateway},
	{"v1-activate-vanity-subdomain-config", "POST", "/v1/projects/{ref}/vanity-subdomain/activate", "vanity subdomains", whyGateway},
	{"v1-deactivate-vanity-subdomain-config", "DELETE", "/v1/projects/{ref}/vanity-subdomain", "vanity subdomains", whyGateway},
	{"v1-exchange-oauth-token", "POST", "/v1/oauth/token", "OAuth apps", "CapyDB authenticates with API keys, OIDC sessions and device login"},
	{"v1-read-only-query", "POST", "/v1/projects/{ref}/database/query/read-only", "the read-only query route", "send read_only: true to POST /v1/projects/{ref}/database/query"},
}

const (
	whyBaaS    = "CapyDB is a database platform, not a backend-as-a-service"
	whyGateway = "CapyDB has no per-project HTTP gateway; databases are reached on the cluster's host"
)

func (f *Facade) notOffered(feature, why string) func(context.Context, *struct{}) (*struct{}, error) {
	return func(context.Context, *struct{}) (*struct{}, error) {
		return nil, Errorf(http.StatusNotFound, "%s is not offered by CapyDB: %s", feature, why)
	}
}

func (f *Facade) registerNotOffered() {
	for _, r := range notOfferedRoutes {
		register(f, Rule{OperationID: r.id, Method: r.method, Path: r.path, NotOffered: true}, http.StatusOK,
			r.feature+" (not offered)", f.notOffered(r.feature, r.why))
	}
	// PostgREST's config read answers "Data API disabled" (db_schema ""), so
	// Supabase's clients leave the rest service out of their health waits.
	register(f, Rule{OperationID: "v1-get-postgrest-service-config", Method: http.MethodGet, Path: "/v1/projects/{ref}/postgrest",
		Scope: "projects:read"}, http.StatusOK, "Data API config: always disabled",
		func(ctx context.Context, in *RefPath) (*struct{ Body PostgrestConfig }, error) {
			if _, err := f.project(ctx, in.Ref); err != nil {
				return nil, err
			}
			return &struct{ Body PostgrestConfig }{Body: PostgrestConfig{}}, nil
		})
}

// PostgrestConfig is the Data API's config: disabled.
type PostgrestConfig struct {
	DBSchema          string `json:"db_schema"`
	DBExtraSearchPath string `json:"db_extra_search_path"`
	MaxRows           int    `json:"max_rows"`
	DBPool            *int   `json:"db_pool"`
}
