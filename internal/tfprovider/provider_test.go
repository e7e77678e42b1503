package tfprovider

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/webhooks"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

func resources(t *testing.T) map[string]rschema.Schema {
	t.Helper()
	ctx := context.Background()
	p := New("test")()
	out := map[string]rschema.Schema{}
	for _, f := range p.Resources(ctx) {
		r := f()
		var md resource.MetadataResponse
		r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: "capydb"}, &md)
		var sr resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &sr)
		if sr.Diagnostics.HasError() {
			t.Fatalf("%s: %v", md.TypeName, sr.Diagnostics)
		}
		if d := sr.Schema.ValidateImplementation(ctx); d.HasError() {
			t.Fatalf("%s schema: %v", md.TypeName, d)
		}
		out[md.TypeName] = sr.Schema
		if _, ok := r.(resource.ResourceWithImportState); !ok {
			t.Errorf("%s has no import", md.TypeName)
		}
		if _, ok := r.(resource.ResourceWithConfigure); !ok {
			t.Errorf("%s is not configurable", md.TypeName)
		}
	}
	return out
}

// TestSchemas: the resources and data sources the issue lists exist, their
// schemas are valid, and every secret is Sensitive.
func TestSchemas(t *testing.T) {
	ctx := context.Background()
	rs := resources(t)
	var names []string
	for n := range rs {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"capydb_api_key", "capydb_backup_schedule", "capydb_preview_database", "capydb_project", "capydb_webhook_endpoint"}
	if !slices.Equal(names, want) {
		t.Fatalf("resources %v, want %v", names, want)
	}
	secrets := map[string][]string{
		"capydb_project":          {"password", "direct_url", "pooled_url", "delete_approval_token"},
		"capydb_preview_database": {"password", "direct_url", "pooled_url"},
		"capydb_api_key":          {"key"},
		"capydb_webhook_endpoint": {"secret"},
	}
	for typ, attrs := range secrets {
		for _, a := range attrs {
			if !rs[typ].Attributes[a].IsSensitive() {
				t.Errorf("%s.%s is not sensitive", typ, a)
			}
		}
		// Nothing else is: plans stay readable.
		for name, a := range rs[typ].Attributes {
			if a.IsSensitive() && !slices.Contains(attrs, name) {
				t.Errorf("%s.%s is sensitive but not a secret", typ, name)
			}
		}
	}
	for typ, s := range rs {
		if !s.Attributes["id"].IsComputed() {
			t.Errorf("%s.id is not computed", typ)
		}
	}
	if !rs["capydb_project"].Attributes["state"].IsComputed() || rs["capydb_project"].Attributes["name"].IsOptional() {
		t.Error("capydb_project: state must be computed and name required")
	}

	p := New("test")()
	var dsNames []string
	for _, f := range p.DataSources(ctx) {
		d := f()
		var md datasource.MetadataResponse
		d.Metadata(ctx, datasource.MetadataRequest{ProviderTypeName: "capydb"}, &md)
		var sr datasource.SchemaResponse
		d.Schema(ctx, datasource.SchemaRequest{}, &sr)
		if dd := sr.Schema.ValidateImplementation(ctx); dd.HasError() || sr.Diagnostics.HasError() {
			t.Fatalf("%s schema: %v %v", md.TypeName, dd, sr.Diagnostics)
		}
		dsNames = append(dsNames, md.TypeName)
		if md.TypeName == "capydb_project_connection" {
			for _, a := range []string{"password", "direct_url", "pooled_url", "session_url"} {
				if !sr.Schema.Attributes[a].IsSensitive() {
					t.Errorf("%s.%s is not sensitive", md.TypeName, a)
				}
			}
		}
	}
	slices.Sort(dsNames)
	wantDS := []string{"capydb_clusters", "capydb_organization", "capydb_postgres_versions", "capydb_project", "capydb_project_connection", "capydb_regions"}
	if !slices.Equal(dsNames, wantDS) {
		t.Fatalf("data sources %v, want %v", dsNames, wantDS)
	}
}

// TestCataloguesMatchServer: the provider's copies of the scope and event
// catalogues are the server's.
func TestCataloguesMatchServer(t *testing.T) {
	if !slices.Equal(allScopes, auth.AllScopes) {
		t.Errorf("allScopes %v, server %v", allScopes, auth.AllScopes)
	}
	if !slices.Equal(webhookEvents, webhooks.Catalogue) {
		t.Errorf("webhookEvents %v, server %v", webhookEvents, webhooks.Catalogue)
	}
}

// validate runs ValidateResourceConfig through the protocol v6 server, the
// way `terraform plan` does, with the given attributes set (the rest null).
func validate(t *testing.T, typ string, set map[string]tftypes.Value) []*tfprotov6.Diagnostic {
	t.Helper()
	ctx := context.Background()
	srv := providerserver.NewProtocol6(New("test")())()
	if _, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{}); err != nil {
		t.Fatal(err)
	}
	obj := resources(t)[typ].Type().TerraformType(ctx).(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for name, at := range obj.AttributeTypes {
		if v, ok := set[name]; ok {
			vals[name] = v
			continue
		}
		vals[name] = tftypes.NewValue(at, nil)
	}
	for name := range set {
		if _, ok := obj.AttributeTypes[name]; !ok {
			t.Fatalf("%s has no attribute %s", typ, name)
		}
	}
	dv, err := tfprotov6.NewDynamicValue(obj, tftypes.NewValue(obj, vals))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: typ, Config: &dv})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Diagnostics
}

func s(v string) tftypes.Value { return tftypes.NewValue(tftypes.String, v) }
func n(v int64) tftypes.Value  { return tftypes.NewValue(tftypes.Number, v) }
func strs(v ...string) tftypes.Value {
	var out []tftypes.Value
	for _, x := range v {
		out = append(out, s(x))
	}
	return tftypes.NewValue(tftypes.Set{ElementType: tftypes.String}, out)
}

// TestPlanTimeValidation: bad arguments fail at plan time with a message
// that names the attribute and the rule; good ones pass.
func TestPlanTimeValidation(t *testing.T) {
	cases := []struct {
		name, typ string
		set       map[string]tftypes.Value
		want      string // "" = valid
	}{
		{"project ok", "capydb_project", map[string]tftypes.Value{"name": s("Shop DB"), "slug": s("shop-db"), "environment": s("non_production")}, ""},
		{"project bad environment", "capydb_project", map[string]tftypes.Value{"name": s("x"), "environment": s("staging")}, "environment must be one of production, non_production"},
		{"project long name", "capydb_project", map[string]tftypes.Value{"name": s(strings.Repeat("a", 65))}, "name must be 1-64 characters"},
		{"project padded name", "capydb_project", map[string]tftypes.Value{"name": s(" x")}, "without surrounding spaces"},
		{"project bad slug", "capydb_project", map[string]tftypes.Value{"name": s("x"), "slug": s("Shop_DB")}, "slug must be 1-63 lower-case letters"},
		{"project slug ends with dash", "capydb_project", map[string]tftypes.Value{"name": s("x"), "slug": s("shop-")}, "not ending with -"},
		{"project bad version", "capydb_project", map[string]tftypes.Value{"name": s("x"), "postgres_version": s("15.4")}, "postgres_version must be a major version"},
		{"project bad approval", "capydb_project", map[string]tftypes.Value{"name": s("x"), "delete_approval_token": s("token")}, "approval token (ap_...)"},
		{"preview ok", "capydb_preview_database", map[string]tftypes.Value{"project_id": s("prj_abc"), "name": s("pr-42"), "ttl_hours": n(48), "mode": s("empty")}, ""},
		{"preview ttl too long", "capydb_preview_database", map[string]tftypes.Value{"project_id": s("prj_abc"), "ttl_hours": n(169)}, "ttl_hours must be between 1 and 168, got 169"},
		{"preview bad mode", "capydb_preview_database", map[string]tftypes.Value{"project_id": s("prj_abc"), "mode": s("snapshot")}, "mode must be one of clone, empty"},
		{"preview bad name", "capydb_preview_database", map[string]tftypes.Value{"project_id": s("prj_abc"), "name": s("-pr")}, "starting with a letter or digit"},
		{"preview bad project", "capydb_preview_database", map[string]tftypes.Value{"project_id": s("shop")}, "project_id must be a project id"},
		{"key ok", "capydb_api_key", map[string]tftypes.Value{"name": s("ci"), "scopes": strs("projects:read", "jobs:read"), "expires_at": s("2099-01-01T00:00:00Z")}, ""},
		{"key bad scope", "capydb_api_key", map[string]tftypes.Value{"name": s("ci"), "scopes": strs("projects:admin")}, `must be one of projects:read`},
		{"key no scopes", "capydb_api_key", map[string]tftypes.Value{"name": s("ci"), "scopes": strs()}, "scopes must not be empty"},
		{"key past expiry", "capydb_api_key", map[string]tftypes.Value{"name": s("ci"), "scopes": strs("*"), "expires_at": s("2001-01-01T00:00:00Z")}, "must be in the future"},
		{"key bad time", "capydb_api_key", map[string]tftypes.Value{"name": s("ci"), "scopes": strs("*"), "expires_at": s("tomorrow")}, "RFC 3339"},
		{"webhook empty description", "capydb_webhook_endpoint", map[string]tftypes.Value{"url": s("https://hooks.example.com/x"), "description": s("")}, "description must be 1-500 characters"},
		{"webhook bad url", "capydb_webhook_endpoint", map[string]tftypes.Value{"url": s("ftp://x")}, "url must be an http:// or https:// URL"},
		{"webhook bad event", "capydb_webhook_endpoint", map[string]tftypes.Value{"url": s("https://hooks.example.com/x"), "event_types": strs("project.exploded")}, "must be one of job.completed"},
		{"schedule bad hour", "capydb_backup_schedule", map[string]tftypes.Value{"project_id": s("prj_a"), "cron_hour": n(24), "cron_minute": n(0)}, "cron_hour must be between 0 and 23"},
		{"schedule ok", "capydb_backup_schedule", map[string]tftypes.Value{"project_id": s("prj_a"), "cron_hour": n(3), "cron_minute": n(30), "retention_days": n(30)}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			diags := validate(t, c.typ, c.set)
			var msgs []string
			for _, d := range diags {
				if d.Severity == tfprotov6.DiagnosticSeverityError {
					msgs = append(msgs, d.Detail)
				}
			}
			all := strings.Join(msgs, " | ")
			if c.want == "" && len(msgs) > 0 {
				t.Fatalf("unexpected errors: %s", all)
			}
			if c.want != "" && !strings.Contains(all, c.want) {
				t.Fatalf("errors %q do not contain %q", all, c.want)
			}
		})
	}
}

func TestPasswordOf(t *testing.T) {
	if got := passwordOf("postgres://u:p%40ss@h:5432/db?sslmode=require"); got != "p@ss" {
		t.Fatalf("password %q", got)
	}
	if got := passwordOf("postgres://h/db"); got != "" {
		t.Fatalf("password %q", got)
	}
}

// TestProjectDataSourceLookup: capydb_project needs exactly one of id and slug.
func TestProjectDataSourceLookup(t *testing.T) {
	ctx := context.Background()
	srv := providerserver.NewProtocol6(New("test")())()
	sr, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	typ := sr.DataSourceSchemas["capydb_project"].ValueType().(tftypes.Object)
	for _, c := range []struct {
		set  map[string]tftypes.Value
		want string
	}{
		{map[string]tftypes.Value{"id": s("prj_abc")}, ""},
		{map[string]tftypes.Value{"slug": s("shop")}, ""},
		{map[string]tftypes.Value{}, "set exactly one of id and slug"},
		{map[string]tftypes.Value{"id": s("prj_abc"), "slug": s("shop")}, "set exactly one of id and slug"},
		{map[string]tftypes.Value{"slug": s("Shop")}, "slug must be 1-63 lower-case letters"},
	} {
		vals := map[string]tftypes.Value{}
		for name, at := range typ.AttributeTypes {
			vals[name] = tftypes.NewValue(at, nil)
		}
		for k, v := range c.set {
			vals[k] = v
		}
		dv, err := tfprotov6.NewDynamicValue(typ, tftypes.NewValue(typ, vals))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.ValidateDataResourceConfig(ctx, &tfprotov6.ValidateDataResourceConfigRequest{TypeName: "capydb_project", Config: &dv})
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, d := range resp.Diagnostics {
			msgs = append(msgs, d.Summary+": "+d.Detail)
		}
		all := strings.Join(msgs, " | ")
		if (c.want == "") != (all == "") || !strings.Contains(all, c.want) {
			t.Errorf("%v: diagnostics %q, want %q", c.set, all, c.want)
		}
	}
}
