package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/capydb/capydb/internal/tfprovider"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// tfProto drives the provider through its protocol v6 server the way
// Terraform core does (validate, plan, apply, read), without the terraform
// binary, so the provider's CRUD is tested against a real server everywhere.
type tfProto struct {
	t       *testing.T
	srv     tfprotov6.ProviderServer
	schemas map[string]*tfprotov6.Schema
	ds      map[string]*tfprotov6.Schema
}

func newTFProto(t *testing.T, s *server) *tfProto {
	t.Helper()
	ctx := context.Background()
	p := &tfProto{t: t, srv: providerserver.NewProtocol6(tfprovider.New("test")())()}
	sr, err := p.srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p.noErrors("GetProviderSchema", sr.Diagnostics)
	p.schemas, p.ds = sr.ResourceSchemas, sr.DataSourceSchemas
	cfg := p.object(sr.Provider, map[string]tftypes.Value{"api_url": str(s.url), "api_key": str(s.key), "job_timeout": str("2m")})
	cr, err := p.srv.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{Config: p.dyn(sr.Provider, cfg)})
	if err != nil {
		t.Fatal(err)
	}
	p.noErrors("ConfigureProvider", cr.Diagnostics)
	return p
}

func str(v string) tftypes.Value { return tftypes.NewValue(tftypes.String, v) }

func (p *tfProto) noErrors(step string, diags []*tfprotov6.Diagnostic) {
	p.t.Helper()
	for _, d := range diags {
		if d.Severity == tfprotov6.DiagnosticSeverityError {
			p.t.Fatalf("%s: %s: %s", step, d.Summary, d.Detail)
		}
	}
}

// object is a value of schema's type with the given attributes set, the rest null.
func (p *tfProto) object(schema *tfprotov6.Schema, set map[string]tftypes.Value) tftypes.Value {
	p.t.Helper()
	typ := schema.ValueType().(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		vals[name] = tftypes.NewValue(at, nil)
	}
	for name, v := range set {
		if _, ok := typ.AttributeTypes[name]; !ok {
			p.t.Fatalf("no attribute %s", name)
		}
		vals[name] = v
	}
	return tftypes.NewValue(typ, vals)
}

func (p *tfProto) dyn(schema *tfprotov6.Schema, v tftypes.Value) *tfprotov6.DynamicValue {
	p.t.Helper()
	d, err := tfprotov6.NewDynamicValue(schema.ValueType(), v)
	if err != nil {
		p.t.Fatal(err)
	}
	return &d
}

func (p *tfProto) value(schema *tfprotov6.Schema, d *tfprotov6.DynamicValue) tftypes.Value {
	p.t.Helper()
	v, err := d.Unmarshal(schema.ValueType())
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

// proposed is Terraform core's proposed new state: the configuration, with
// computed attributes the configuration leaves null taken from the prior state.
func (p *tfProto) proposed(schema *tfprotov6.Schema, prior, config tftypes.Value) tftypes.Value {
	if prior.IsNull() {
		return config
	}
	var pv, cv map[string]tftypes.Value
	_ = prior.As(&pv)
	_ = config.As(&cv)
	out := map[string]tftypes.Value{}
	for _, a := range schema.Block.Attributes {
		out[a.Name] = cv[a.Name]
		if a.Computed && cv[a.Name].IsNull() {
			out[a.Name] = pv[a.Name]
		}
	}
	return tftypes.NewValue(schema.ValueType(), out)
}

// apply plans and applies config over prior (a null prior creates) and
// returns the new state and the attributes whose change forces a replace.
func (p *tfProto) apply(typ string, prior tftypes.Value, set map[string]tftypes.Value) (tftypes.Value, []string) {
	p.t.Helper()
	ctx := context.Background()
	schema := p.schemas[typ]
	config := p.object(schema, set)
	vr, err := p.srv.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: typ, Config: p.dyn(schema, config)})
	if err != nil {
		p.t.Fatal(err)
	}
	p.noErrors("validate "+typ, vr.Diagnostics)
	if !prior.IsKnown() || prior.Type() == nil {
		prior = tftypes.NewValue(schema.ValueType(), nil)
	}
	plan, err := p.srv.PlanResourceChange(ctx, &tfprotov6.PlanResourceChangeRequest{TypeName: typ,
		PriorState: p.dyn(schema, prior), ProposedNewState: p.dyn(schema, p.proposed(schema, prior, config)), Config: p.dyn(schema, config)})
	if err != nil {
		p.t.Fatal(err)
	}
	p.noErrors("plan "+typ, plan.Diagnostics)
	var replace []string
	for _, ap := range plan.RequiresReplace {
		if steps := ap.Steps(); len(steps) > 0 {
			if name, ok := steps[0].(tftypes.AttributeName); ok {
				replace = append(replace, string(name))
			}
		}
	}
	if len(replace) > 0 {
		return prior, replace
	}
	ar, err := p.srv.ApplyResourceChange(ctx, &tfprotov6.ApplyResourceChangeRequest{TypeName: typ,
		PriorState: p.dyn(schema, prior), PlannedState: plan.PlannedState, Config: p.dyn(schema, config)})
	if err != nil {
		p.t.Fatal(err)
	}
	p.noErrors("apply "+typ, ar.Diagnostics)
	return p.value(schema, ar.NewState), nil
}

// read refreshes a state; a null result means the resource left the state.
func (p *tfProto) read(typ string, state tftypes.Value) tftypes.Value {
	p.t.Helper()
	schema := p.schemas[typ]
	rr, err := p.srv.ReadResource(context.Background(), &tfprotov6.ReadResourceRequest{TypeName: typ, CurrentState: p.dyn(schema, state)})
	if err != nil {
		p.t.Fatal(err)
	}
	p.noErrors("read "+typ, rr.Diagnostics)
	return p.value(schema, rr.NewState)
}

func (p *tfProto) destroy(typ string, state tftypes.Value) {
	p.t.Helper()
	schema := p.schemas[typ]
	null := tftypes.NewValue(schema.ValueType(), nil)
	ar, err := p.srv.ApplyResourceChange(context.Background(), &tfprotov6.ApplyResourceChangeRequest{TypeName: typ,
		PriorState: p.dyn(schema, state), PlannedState: p.dyn(schema, null), Config: p.dyn(schema, null)})
	if err != nil {
		p.t.Fatal(err)
	}
	p.noErrors("destroy "+typ, ar.Diagnostics)
}

func (p *tfProto) readData(typ string, set map[string]tftypes.Value) tftypes.Value {
	p.t.Helper()
	schema := p.ds[typ]
	rr, err := p.srv.ReadDataSource(context.Background(), &tfprotov6.ReadDataSourceRequest{TypeName: typ, Config: p.dyn(schema, p.object(schema, set))})
	if err != nil {
		p.t.Fatal(err)
	}
	p.noErrors("read data "+typ, rr.Diagnostics)
	return p.value(schema, rr.State)
}

// attr returns a top-level attribute of an object value as a Go string (or fmt of it).
func attr(t *testing.T, v tftypes.Value, name string) string {
	t.Helper()
	var m map[string]tftypes.Value
	if err := v.As(&m); err != nil {
		t.Fatal(err)
	}
	a := m[name]
	if a.IsNull() {
		return ""
	}
	switch {
	case a.Type().Is(tftypes.String):
		var s string
		_ = a.As(&s)
		return s
	case a.Type().Is(tftypes.Bool):
		var b bool
		_ = a.As(&b)
		return fmt.Sprint(b)
	}
	return a.String()
}

// TestTerraformProtocol runs the provider's CRUD against a real server
// through the protocol v6 server (no terraform binary needed).
func TestTerraformProtocol(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", 0, 0, "--webhooks-allow-insecure")
	p := newTFProto(t, s)
	null := tftypes.Value{}

	// Catalogue data sources.
	regions := p.readData("capydb_regions", nil)
	if ids := attr(t, regions, "ids"); !strings.Contains(ids, `"local"`) {
		t.Fatalf("regions: %s", ids)
	}
	if cl := attr(t, p.readData("capydb_clusters", nil), "clusters"); !strings.Contains(cl, `"local"`) {
		t.Fatalf("clusters: %s", cl)
	}

	// Project: create waits for provisioning; its URL works.
	cfg := map[string]tftypes.Value{"name": str("proto-app"), "environment": str("non_production")}
	proj, _ := p.apply("capydb_project", null, cfg)
	pid := attr(t, proj, "id")
	if attr(t, proj, "state") != "ready" || attr(t, proj, "always_on") != "false" || !strings.HasPrefix(pid, "prj_") ||
		!strings.HasPrefix(attr(t, proj, "cluster_id"), "cl_") {
		t.Fatalf("project state: %v", proj)
	}
	if db := query[string](t, attr(t, proj, "direct_url"), "SELECT current_database()"); db != attr(t, proj, "database_name") {
		t.Fatalf("direct_url reaches %s", db)
	}
	if got := p.read("capydb_project", proj); !got.Equal(proj) {
		t.Fatalf("read changed the state:\n%v\n%v", got, proj)
	}
	// Data source by slug.
	if ds := p.readData("capydb_project", map[string]tftypes.Value{"slug": str(attr(t, proj, "slug"))}); attr(t, ds, "id") != pid {
		t.Fatalf("capydb_project by slug: %v", ds)
	}

	// In place: environment. Replace: name.
	cfg["environment"] = str("production")
	proj, replace := p.apply("capydb_project", proj, cfg)
	if len(replace) != 0 || attr(t, proj, "environment") != "production" || attr(t, proj, "always_on") != "true" {
		t.Fatalf("environment update: replace %v, state %v", replace, proj)
	}
	if got := s.must(200, "GET", "/v1/projects/"+pid, nil).str("project", "environment"); got != "production" {
		t.Fatalf("API environment %q", got)
	}
	cfg["name"] = str("proto-app-2")
	if _, replace := p.apply("capydb_project", proj, cfg); !slices.Equal(replace, []string{"name"}) {
		t.Fatalf("name change: replace %v", replace)
	}
	cfg["name"] = str("proto-app")

	// Preview: create, extend in place, destroy.
	pv, _ := p.apply("capydb_preview_database", null, map[string]tftypes.Value{"project_id": str(pid), "mode": str("empty"),
		"ttl_hours": tftypes.NewValue(tftypes.Number, 1)})
	pvID := attr(t, pv, "id")
	if attr(t, pv, "state") != "ready" || attr(t, pv, "name") == "" {
		t.Fatalf("preview: %v", pv)
	}
	before := attr(t, pv, "ttl_expires_at")
	pv, replace = p.apply("capydb_preview_database", pv, map[string]tftypes.Value{"project_id": str(pid), "mode": str("empty"),
		"ttl_hours": tftypes.NewValue(tftypes.Number, 3)})
	if len(replace) != 0 || attr(t, pv, "ttl_expires_at") <= before || attr(t, pv, "id") != pvID {
		t.Fatalf("extend: replace %v, expiry %s -> %s", replace, before, attr(t, pv, "ttl_expires_at"))
	}
	p.destroy("capydb_preview_database", pv)
	if r := s.call("GET", "/v1/preview-databases/"+pvID, s.key, nil); r.Status != 404 {
		t.Fatalf("preview after destroy: %d", r.Status)
	}

	// Backup schedule: create, update, destroy switches it off.
	sched := map[string]tftypes.Value{"project_id": str(pid), "cron_hour": tftypes.NewValue(tftypes.Number, 3),
		"cron_minute": tftypes.NewValue(tftypes.Number, 30), "retention_days": tftypes.NewValue(tftypes.Number, 14)}
	bs, _ := p.apply("capydb_backup_schedule", null, sched)
	sched["cron_hour"] = tftypes.NewValue(tftypes.Number, 4)
	bs, _ = p.apply("capydb_backup_schedule", bs, sched)
	got := s.must(200, "GET", "/v1/projects/"+pid+"/scheduled-backups", nil).get("scheduled_backups").([]any)
	if len(got) != 1 || got[0].(map[string]any)["cron_hour"] != float64(4) || got[0].(map[string]any)["retention_days"] != float64(14) ||
		got[0].(map[string]any)["is_active"] != true {
		t.Fatalf("schedule: %v", got)
	}
	p.destroy("capydb_backup_schedule", bs)
	got = s.must(200, "GET", "/v1/projects/"+pid+"/scheduled-backups", nil).get("scheduled_backups").([]any)
	if len(got) != 1 || got[0].(map[string]any)["is_active"] != false {
		t.Fatalf("schedule after destroy: %v", got)
	}

	// Webhook endpoint: secret once, in-place update, destroy.
	org := s.must(200, "GET", "/v1/me", nil).str("organization", "id")
	wcfg := map[string]tftypes.Value{"url": str("http://127.0.0.1:9/hook"),
		"event_types": tftypes.NewValue(tftypes.Set{ElementType: tftypes.String}, []tftypes.Value{str("project.ready")})}
	wh, _ := p.apply("capydb_webhook_endpoint", null, wcfg)
	if !strings.HasPrefix(attr(t, wh, "secret"), "whsec_") || attr(t, wh, "is_active") != "true" {
		t.Fatalf("webhook: %v", wh)
	}
	secret := attr(t, wh, "secret")
	wcfg["is_active"] = tftypes.NewValue(tftypes.Bool, false)
	wcfg["description"] = str("ops")
	wh, replace = p.apply("capydb_webhook_endpoint", wh, wcfg)
	eps := s.must(200, "GET", "/v1/organizations/"+org+"/webhook-endpoints", nil).get("webhook_endpoints").([]any)
	if len(replace) != 0 || len(eps) != 1 || eps[0].(map[string]any)["is_active"] != false || eps[0].(map[string]any)["description"] != "ops" ||
		attr(t, wh, "secret") != secret {
		t.Fatalf("webhook update: replace %v, %v, secret kept: %v", replace, eps, attr(t, wh, "secret") == secret)
	}
	// Bumping secret_version rotates the secret in place.
	wcfg["secret_version"] = tftypes.NewValue(tftypes.Number, 2)
	wh, replace = p.apply("capydb_webhook_endpoint", wh, wcfg)
	if rotated := attr(t, wh, "secret"); len(replace) != 0 || rotated == secret || !strings.HasPrefix(rotated, "whsec_") {
		t.Fatalf("rotation: replace %v, secret changed: %v", replace, rotated != secret)
	}
	p.destroy("capydb_webhook_endpoint", wh)
	if eps := s.must(200, "GET", "/v1/organizations/"+org+"/webhook-endpoints", nil).get("webhook_endpoints").([]any); len(eps) != 0 {
		t.Fatalf("webhooks after destroy: %v", eps)
	}

	// Production delete without an approval stops with the fix in the message.
	schema := p.schemas["capydb_project"]
	ar, err := p.srv.ApplyResourceChange(context.Background(), &tfprotov6.ApplyResourceChangeRequest{TypeName: "capydb_project",
		PriorState: p.dyn(schema, proj), PlannedState: p.dyn(schema, tftypes.NewValue(schema.ValueType(), nil)),
		Config: p.dyn(schema, tftypes.NewValue(schema.ValueType(), nil))})
	if err != nil || len(ar.Diagnostics) == 0 || !strings.Contains(ar.Diagnostics[0].Detail, "set approve_production_delete = true") {
		t.Fatalf("unapproved production delete: %v %+v", err, ar.Diagnostics)
	}

	// Deleted out of band: Read drops it from state.
	tok := s.must(201, "POST", "/v1/projects/"+pid+"/approvals", map[string]any{"action": "project.delete"}).str("approval", "token")
	job := s.must(202, "DELETE", "/v1/projects/"+pid+"?approval_token="+tok, nil).str("job", "id")
	if j := s.waitJob(job); j["state"] != "completed" {
		t.Fatalf("delete job: %v", j)
	}
	if st := p.read("capydb_project", proj); !st.IsNull() {
		t.Fatalf("a deleted project stays in state: %v", st)
	}
}
