package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tfRun is a Terraform working directory wired to a freshly built
// terraform-provider-capydb through dev_overrides, so no registry is asked.
type tfRun struct {
	t   *testing.T
	bin string
	dir string
	env []string
}

// terraformBinary finds terraform on PATH; a missing one fails the test
// with what to do (nothing here downloads it).
func terraformBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatal("the terraform binary is not on PATH: install Terraform >= 1.5 to run the provider's end-to-end test " +
			"(TestTerraformProtocol covers the same CRUD without it; see docs/terraform.md)")
	}
	return bin
}

func newTerraform(t *testing.T, s *server, bin string) *tfRun {
	t.Helper()
	root := t.TempDir()
	plugins := filepath.Join(root, "plugins")
	build := exec.Command("go", "build", "-o", filepath.Join(plugins, "terraform-provider-capydb"), "../cmd/terraform-provider-capydb")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the provider: %v\n%s", err, out)
	}
	// dev_overrides makes plan/apply use the fresh build; terraform init
	// still resolves the provider, so a filesystem mirror holding the same
	// build answers it offline (no registry is ever asked).
	mirror := filepath.Join(root, "mirror")
	target := filepath.Join(mirror, "registry.terraform.io", "capydb", "capydb", "0.0.1", runtime.GOOS+"_"+runtime.GOARCH)
	if err := os.MkdirAll(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(plugins, "terraform-provider-capydb"), filepath.Join(target, "terraform-provider-capydb_v0.0.1")); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(root, "terraformrc")
	cfg := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"capydb/capydb\" = %q\n  }\n  filesystem_mirror {\n    path    = %q\n    include = [\"capydb/capydb\"]\n  }\n}\n", plugins, mirror)
	if err := os.WriteFile(rc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "work")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "HOME="+root, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1",
		"CAPYDB_API_URL="+s.url, "CAPYDB_API_KEY="+s.key)
	return &tfRun{t: t, bin: bin, dir: dir, env: env}
}

// write replaces main.tf.
func (r *tfRun) write(hcl string) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, "main.tf"), []byte(hcl), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

// run runs terraform and returns its output and exit code; wantCodes lists
// the acceptable ones.
func (r *tfRun) run(wantCodes []int, args ...string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Dir, cmd.Env = r.dir, r.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("terraform %s: %v", strings.Join(args, " "), err)
	}
	for _, c := range wantCodes {
		if c == code {
			return out.String()
		}
	}
	r.t.Fatalf("terraform %s: exit %d, want %v\n%s", strings.Join(args, " "), code, wantCodes, out.String())
	return ""
}

func (r *tfRun) ok(args ...string) string { r.t.Helper(); return r.run([]int{0}, args...) }

// planActions plans into a file and returns each resource address's
// actions ("create", "update", "delete,create", ...) from terraform show -json.
func (r *tfRun) planActions() (map[string]string, string) {
	r.t.Helper()
	text := r.run([]int{0, 2}, "plan", "-input=false", "-no-color", "-detailed-exitcode", "-out=tfplan")
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				Actions []string `json:"actions"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal([]byte(r.ok("show", "-json", "tfplan")), &plan); err != nil {
		r.t.Fatal(err)
	}
	acts := map[string]string{}
	for _, c := range plan.ResourceChanges {
		if a := strings.Join(c.Change.Actions, ","); a != "no-op" && a != "read" {
			acts[c.Address] = a
		}
	}
	return acts, text
}

func (r *tfRun) outputs() map[string]string {
	r.t.Helper()
	var outs map[string]struct {
		Value any `json:"value"`
	}
	if err := json.Unmarshal([]byte(r.ok("output", "-json")), &outs); err != nil {
		r.t.Fatal(err)
	}
	m := map[string]string{}
	for k, v := range outs {
		m[k] = fmt.Sprint(v.Value)
	}
	return m
}

func wantActions(t *testing.T, step string, got map[string]string, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: planned actions %v, want %v", step, got, want)
	}
}

const tfConfig = `
terraform {
  required_providers {
    capydb = { source = "capydb/capydb" }
  }
}

provider "capydb" {
  job_timeout = "3m"
}

data "capydb_postgres_versions" "all" {}
data "capydb_organization" "me" {}

resource "capydb_project" "app" {
  name                      = "tf-app"
  environment               = "%s"
  postgres_version          = data.capydb_postgres_versions.all.default_version
  approve_production_delete = %s
}

resource "capydb_preview_database" "pr" {
  project_id = capydb_project.app.id
  name       = "%s"
  mode       = "empty"
  ttl_hours  = %d
}

resource "capydb_api_key" "reader" {
  name       = "tf-reader"
  scopes     = ["projects:read"]
  project_id = capydb_project.app.id
}

data "capydb_project_connection" "app" {
  project_id = capydb_project.app.id
}

output "project_id"    { value = capydb_project.app.id }
output "database_name" { value = capydb_project.app.database_name }
output "direct_url" {
  value     = capydb_project.app.direct_url
  sensitive = true
}
output "pooled_url" {
  value     = data.capydb_project_connection.app.pooled_url
  sensitive = true
}
output "password" {
  value     = capydb_project.app.password
  sensitive = true
}
output "preview_id"  { value = capydb_preview_database.pr.id }
output "preview_url" {
  value     = capydb_preview_database.pr.direct_url
  sensitive = true
}
output "preview_expires" { value = capydb_preview_database.pr.ttl_expires_at }
output "key" {
  value     = capydb_api_key.reader.key
  sensitive = true
}
output "key_id" { value = capydb_api_key.reader.id }
output "org"    { value = data.capydb_organization.me.slug }
`

// TestTerraformProvider drives the real terraform binary against a real
// server: init, plan, apply, a clean re-plan, in-place updates, a replace,
// an out-of-band deletion, import, and destroy, checking each step on the
// API and on the databases themselves.
func TestTerraformProvider(t *testing.T) {
	t.Parallel()
	bin := terraformBinary(t)
	s := startServer(t, "", 0, 0)
	tf := newTerraform(t, s, bin)
	ctx := context.Background()

	tf.write(fmt.Sprintf(tfConfig, "non_production", "false", "pr-1", 2))
	if out := tf.ok("init", "-input=false", "-no-color"); !strings.Contains(out, "Provider development overrides are in effect") {
		t.Fatalf("init did not use the dev override:\n%s", out)
	}
	acts, text := tf.planActions()
	wantActions(t, "first plan", acts, map[string]string{
		"capydb_project.app": "create", "capydb_preview_database.pr": "create", "capydb_api_key.reader": "create"})
	if !strings.Contains(text, "Plan: 3 to add, 0 to change, 0 to destroy") || !strings.Contains(text, "direct_url                = (sensitive value)") {
		t.Fatalf("first plan:\n%s", text)
	}
	applied := tf.ok("apply", "-input=false", "-no-color", "tfplan")
	out := tf.outputs()
	pid, previewID := out["project_id"], out["preview_id"]
	if out["password"] == "" || strings.Contains(applied, out["password"]) || strings.Contains(applied, out["key"]) {
		t.Fatalf("a secret is missing or was printed by apply:\n%s", applied)
	}

	// The project is ready and really there: its URL logs in to its database.
	p := s.must(200, "GET", "/v1/projects/"+pid, nil).get("project").(map[string]any)
	if p["state"] != "ready" || p["environment"] != "non_production" || p["always_on"] != false || p["name"] != "tf-app" {
		t.Fatalf("project after apply: %v", p)
	}
	if db := query[string](t, out["direct_url"], "SELECT current_database()"); db != out["database_name"] || db != p["database_name"] {
		t.Fatalf("direct_url reaches %q, want %q", db, out["database_name"])
	}
	conn, err := connect(out["direct_url"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE tf_marker (id int); INSERT INTO tf_marker VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if n := query[int](t, out["pooled_url"], "SELECT id FROM tf_marker"); n != 42 {
		t.Fatalf("pooled_url sees %d", n)
	}
	pv := s.must(200, "GET", "/v1/preview-databases/"+previewID, nil).get("preview").(map[string]any)
	if pv["state"] != "ready" || pv["name"] != "pr-1" || pv["mode"] != "empty" || pv["project_id"] != pid {
		t.Fatalf("preview after apply: %v", pv)
	}
	if db := query[string](t, out["preview_url"], "SELECT current_database()"); db != pv["database_name"] {
		t.Fatalf("preview_url reaches %q, want %v", db, pv["database_name"])
	}
	// The key works, for its project only.
	if r := s.call("GET", "/v1/projects/"+pid, out["key"], nil); r.Status != 200 {
		t.Fatalf("the created key: %d %s", r.Status, r.Raw)
	}

	// Nothing drifts: a second plan is empty.
	if acts, text := tf.planActions(); len(acts) != 0 {
		t.Fatalf("plan after apply is not empty: %v\n%s", acts, text)
	}

	// In-place updates: environment (PATCH) and ttl_hours (extend).
	tf.write(fmt.Sprintf(tfConfig, "production", "true", "pr-1", 6))
	acts, text = tf.planActions()
	wantActions(t, "update plan", acts, map[string]string{"capydb_project.app": "update", "capydb_preview_database.pr": "update"})
	if !strings.Contains(text, "Plan: 0 to add, 2 to change, 0 to destroy") || !strings.Contains(text, `~ environment               = "non_production" -> "production"`) {
		t.Fatalf("update plan:\n%s", text)
	}
	tf.ok("apply", "-input=false", "-no-color", "tfplan")
	p = s.must(200, "GET", "/v1/projects/"+pid, nil).get("project").(map[string]any)
	if p["environment"] != "production" || p["always_on"] != true {
		t.Fatalf("project after update: %v", p)
	}
	exp, err := time.Parse(time.RFC3339, tf.outputs()["preview_expires"])
	if err != nil || time.Until(exp) < 5*time.Hour || time.Until(exp) > 6*time.Hour+time.Minute {
		t.Fatalf("preview expiry after ttl_hours = 6: %v %v", exp, err)
	}
	if tf.outputs()["preview_id"] != previewID {
		t.Fatal("the preview was replaced by an in-place update")
	}

	// A new preview name replaces the preview.
	tf.write(fmt.Sprintf(tfConfig, "production", "true", "pr-2", 6))
	acts, text = tf.planActions()
	wantActions(t, "replace plan", acts, map[string]string{"capydb_preview_database.pr": "delete,create"})
	if !strings.Contains(text, "must be replaced") {
		t.Fatalf("replace plan:\n%s", text)
	}
	tf.ok("apply", "-input=false", "-no-color", "tfplan")
	if r := s.call("GET", "/v1/preview-databases/"+previewID, s.key, nil); r.Status != 404 {
		t.Fatalf("replaced preview: %d %s", r.Status, r.Raw)
	}
	previewID = tf.outputs()["preview_id"]

	// Deleted out of band: the key is dropped from state and planned again.
	keyID := tf.outputs()["key_id"]
	s.must(200, "DELETE", "/v1/organizations/"+p["organization_id"].(string)+"/api-keys/"+keyID, nil)
	acts, _ = tf.planActions()
	wantActions(t, "plan after revocation", acts, map[string]string{"capydb_api_key.reader": "create"})
	tf.ok("apply", "-input=false", "-no-color", "tfplan")

	// Import: forget the project, import it by id, and the plan is clean
	// again (but for the provider-side approve_production_delete flag).
	tf.ok("state", "rm", "capydb_project.app")
	if imp := tf.ok("import", "-input=false", "-no-color", "capydb_project.app", pid); !strings.Contains(imp, "Import successful") {
		t.Fatalf("import:\n%s", imp)
	}
	show := tf.ok("state", "show", "-no-color", "capydb_project.app")
	for _, want := range []string{`name                      = "tf-app"`, `environment               = "production"`, `state                     = "ready"`, `direct_url                = (sensitive value)`} {
		if !strings.Contains(show, want) {
			t.Fatalf("imported state lacks %q:\n%s", want, show)
		}
	}
	acts, text = tf.planActions()
	wantActions(t, "plan after import", acts, map[string]string{"capydb_project.app": "update"})
	if !strings.Contains(text, "~ approve_production_delete = false -> true") {
		t.Fatalf("plan after import:\n%s", text)
	}
	tf.ok("apply", "-input=false", "-no-color", "tfplan")

	// Destroy: a production project, approved by the provider's admin key;
	// everything is gone from the API afterwards.
	keyID = tf.outputs()["key_id"]
	tf.ok("destroy", "-auto-approve", "-input=false", "-no-color")
	revoked := false
	for _, k := range s.must(200, "GET", "/v1/organizations/"+p["organization_id"].(string)+"/api-keys", nil).get("api_keys").([]any) {
		if k := k.(map[string]any); k["id"] == keyID {
			revoked = k["is_active"] == false && k["revoked_at"] != nil
		}
	}
	if !revoked {
		t.Fatalf("destroy did not revoke key %s", keyID)
	}
	if r := s.call("GET", "/v1/projects/"+pid, s.key, nil); r.Status != 404 {
		t.Fatalf("project after destroy: %d %s", r.Status, r.Raw)
	}
	if r := s.call("GET", "/v1/preview-databases/"+previewID, s.key, nil); r.Status != 404 {
		t.Fatalf("preview after destroy: %d %s", r.Status, r.Raw)
	}
	if state := tf.ok("state", "list"); strings.TrimSpace(state) != "" {
		t.Fatalf("state after destroy: %q", state)
	}
}
