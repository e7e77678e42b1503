package tfprovider

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// The catalogues the API validates against (auth.AllScopes,
// webhooks.Catalogue); a unit test keeps these copies equal, so the
// provider binary does not link the server's packages.
var (
	allScopes = []string{"projects:read", "projects:write", "credentials:read", "backups:read", "backups:write",
		"jobs:read", "organizations:read", "organizations:write", "api_keys:read", "api_keys:write", "schema:read"}
	webhookEvents = []string{"job.completed", "job.failed", "project.ready", "project.deleted", "backup.completed",
		"preview.ready", "preview.deleted", "import.completed", "restore.completed",
		"credentials.rotated", "alert.triggered", "alert.resolved", "project.moved"}
)

// configure turns provider data into the client (nil before the provider
// is configured, as during validation).
func configure(data any, diags *diag.Diagnostics) *client {
	if data == nil {
		return nil
	}
	c, ok := data.(*client)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("got %T", data))
		return nil
	}
	return c
}

// isNotFound is the 404 that drops a resource from state (API.md §1.6).
func isNotFound(err error) bool { return apiclient.StatusOf(err) == http.StatusNotFound }

func apiErr(diags *diag.Diagnostics, what string, err error) {
	diags.AddError("CapyDB: "+what, err.Error())
}

func strOrNull(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

func ptrStr(p *string) types.String {
	if p == nil {
		return types.StringNull()
	}
	return types.StringValue(*p)
}

func timeStr(t time.Time) types.String {
	if t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}

func timePtrStr(t *time.Time) types.String {
	if t == nil {
		return types.StringNull()
	}
	return timeStr(*t)
}

// passwordOf is the password inside a connection URL.
func passwordOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}

// connFields are the secret-bearing attributes of a project or preview.
type connFields struct {
	Username  types.String `tfsdk:"username"`
	Password  types.String `tfsdk:"password"`
	DirectURL types.String `tfsdk:"direct_url"`
	PooledURL types.String `tfsdk:"pooled_url"`
}

func (f *connFields) set(ci *apiclient.ConnectionInfo) {
	f.Username = types.StringValue(ci.Username)
	f.Password = strOrNull(passwordOf(ci.DirectURL))
	f.DirectURL = strOrNull(ci.DirectURL)
	f.PooledURL = strOrNull(ci.PooledURL)
}

func computedInt(desc string) schema.Int64Attribute {
	return schema.Int64Attribute{Computed: true, Description: desc,
		PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()}}
}

func pathRoot(name string) path.Path { return path.Root(name) }
