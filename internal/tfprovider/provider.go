// Package tfprovider is the CapyDB Terraform provider (terraform-plugin-framework,
// protocol v6). It talks to the API only through internal/apiclient, waits
// for the jobs that mutations queue, and drops a resource from state when
// the API answers 404 (API.md §1.6).
package tfprovider

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/capydb/capydb/internal/apiclient"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Address is the provider's registry address (what dev_overrides names).
const Address = "registry.terraform.io/capydb/capydb"

const defaultAPIURL = "http://127.0.0.1:8080"

// Provider is the capydb provider.
type Provider struct {
	version string
}

// New returns the provider factory for providerserver.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &Provider{version: version} }
}

type providerModel struct {
	APIURL     types.String `tfsdk:"api_url"`
	APIKey     types.String `tfsdk:"api_key"`
	JobTimeout types.String `tfsdk:"job_timeout"`
}

// client is what resources and data sources get from Configure.
type client struct {
	api        *apiclient.Client
	jobTimeout time.Duration
	// Job polls start at poll and double up to maxPoll (PRODUCT.md §23.4:
	// the official provider polls every 5 s).
	poll, maxPoll time.Duration

	mu    sync.Mutex // guards orgID
	orgID string
}

// org returns the caller's organization id (GET /v1/me, once).
func (c *client) org(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.orgID != "" {
		return c.orgID, nil
	}
	me, err := c.api.Me(ctx)
	if err != nil {
		return "", err
	}
	if me.Organization != nil {
		c.orgID = me.Organization.ID
	} else {
		c.orgID = me.Principal.OrganizationID
	}
	return c.orgID, nil
}

// wait waits for a job within the provider's job timeout.
func (c *client) wait(ctx context.Context, job *apiclient.Job) (*apiclient.Job, error) {
	if job == nil || job.ID == "" {
		return job, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.jobTimeout)
	defer cancel()
	return c.api.WaitJob(ctx, job.ID, c.poll, c.maxPoll)
}

func (p *Provider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "capydb"
	resp.Version = p.version
}

func (p *Provider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Manages CapyDB projects, preview databases, API keys, webhook endpoints and backup schedules.",
		Attributes: map[string]schema.Attribute{
			"api_url": schema.StringAttribute{Optional: true,
				Description: "API base URL. Default: $CAPYDB_API_URL, else " + defaultAPIURL + ".",
				Validators:  []validatorString{httpURL{}}},
			"api_key": schema.StringAttribute{Optional: true, Sensitive: true,
				Description: "API key (capy_live_...). Default: $CAPYDB_API_KEY."},
			"job_timeout": schema.StringAttribute{Optional: true,
				Description: "How long to wait for an asynchronous job (Go duration, default 20m).",
				Validators:  []validatorString{duration{}}},
		},
	}
}

func (p *Provider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	url := firstOf(m.APIURL, os.Getenv("CAPYDB_API_URL"), defaultAPIURL)
	key := firstOf(m.APIKey, os.Getenv("CAPYDB_API_KEY"), "")
	if key == "" {
		resp.Diagnostics.AddAttributeError(path.Root("api_key"), "Missing API key",
			"Set api_key in the provider block or the CAPYDB_API_KEY environment variable.")
		return
	}
	timeout := 20 * time.Minute
	if s, ok := known(m.JobTimeout); ok {
		timeout, _ = time.ParseDuration(s) // validated at plan time
	}
	api := apiclient.New(url, key, p.version, 0)
	api.UserAgent = "terraform-provider-capydb/" + firstWord(p.version)
	c := &client{api: api, jobTimeout: timeout, poll: 250 * time.Millisecond, maxPoll: 5 * time.Second}
	resp.ResourceData, resp.DataSourceData = c, c
}

func firstOf(v types.String, env, def string) string {
	if !v.IsNull() && !v.IsUnknown() && v.ValueString() != "" {
		return v.ValueString()
	}
	if env != "" {
		return env
	}
	return def
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return "dev"
}

func (p *Provider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		func() resource.Resource { return &projectResource{} },
		func() resource.Resource { return &previewResource{} },
		func() resource.Resource { return &apiKeyResource{} },
		func() resource.Resource { return &webhookResource{} },
		func() resource.Resource { return &backupScheduleResource{} },
	}
}

func (p *Provider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		func() datasource.DataSource { return &organizationDataSource{} },
		func() datasource.DataSource { return &regionsDataSource{} },
		func() datasource.DataSource { return &versionsDataSource{} },
		func() datasource.DataSource { return &clustersDataSource{} },
		func() datasource.DataSource { return &projectDataSource{} },
		func() datasource.DataSource { return &connectionDataSource{} },
	}
}

var (
	_ provider.Provider                       = (*Provider)(nil)
	_ resource.ResourceWithImportState        = (*projectResource)(nil)
	_ resource.ResourceWithImportState        = (*previewResource)(nil)
	_ resource.ResourceWithImportState        = (*apiKeyResource)(nil)
	_ resource.ResourceWithImportState        = (*webhookResource)(nil)
	_ resource.ResourceWithImportState        = (*backupScheduleResource)(nil)
	_ datasource.DataSourceWithConfigure      = (*organizationDataSource)(nil)
	_ datasource.DataSourceWithValidateConfig = (*projectDataSource)(nil)
	_ datasource.DataSourceWithConfigure      = (*connectionDataSource)(nil)
)
