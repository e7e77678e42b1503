package api

import (
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capydb/capydb/internal/wire"
)

// The typed contract: what register and typeDocument add to the generated
// document so that linters pass and generated clients get real types
// (docs/api.md, "How the document is typed").

// jsonMediaType is the one media type of the document, for successes and
// errors alike. Answers carry "application/json; charset=utf-8" (API.md
// §1.5), the same media type with its charset parameter.
const jsonMediaType = "application/json"

// tagDescriptions are the document's top-level tags. register refuses an
// operation without a tag or with a tag missing here.
var tagDescriptions = map[string]string{
	"status":        "Service status (anonymous)",
	"cli-login":     "Device login for the CLI and agents",
	"identity":      "The caller",
	"organizations": "The caller's organization",
	"api-keys":      "Organization API keys",
	"webhooks":      "Webhook endpoints and deliveries",
	"catalogue":     "Regions, Postgres versions and clusters",
	"projects":      "Projects, approvals, connections and credentials",
	"jobs":          "Asynchronous jobs",
	"audit":         "Audit events",
	"previews":      "Preview databases",
	"backups":       "Backups and backup schedules",
	"restores":      "Restores and restore points",
	"exports":       "Database exports",
	"imports":       "Database imports",
	"network":       "Network allow-lists and bans of a project's database (†)",
	"stubs":         "Routes of features this server does not offer",
	"schema":        "Schema description, diff, type generation and lint",
	"advisor":       "Index advisor and index hygiene",
	"studio":        "SQL runner, tables and rows, SQL history",
	"snippets":      "Saved SQL snippets (†)",
	"database":      "Database settings, pooler settings, read-only mode, SSL, extensions, upgrades and the app role",
	"observability": "Live metrics, sampled history and usage alerts",
	"notifications": "Notification preferences",
	"ephemeral":     "Ephemeral databases: created without an account, claimed into an organization",
	"integrations":  "Vercel, Netlify and auth-provider integrations, and their signed receivers",
}

// errorStatuses are the 4xx answers an operation declares, derived from its
// access rule and method so that every new route gets them: 400 for every
// route (a malformed path or query is refused before routing), 401 and 429
// with a credential, 403 with a scope or role rule, 404 with ids in the
// path, 409 for authenticated changes, 413 and 415 with a body; plus the
// route's own extras (opSpec.Errors). Validation problems are 400, never 422.
func errorStatuses(spec opSpec, hasBody bool) []int {
	codes := []int{http.StatusBadRequest}
	if !spec.Anonymous {
		codes = append(codes, http.StatusUnauthorized, http.StatusTooManyRequests)
		if spec.Scope != "" || spec.OrgKeyOnly || spec.AdminOnly {
			codes = append(codes, http.StatusForbidden)
		}
		if spec.Method != http.MethodGet {
			codes = append(codes, http.StatusConflict)
		}
	} else if spec.RateLimit != "" {
		codes = append(codes, http.StatusTooManyRequests)
	}
	if pathParam.MatchString(spec.Path) {
		codes = append(codes, http.StatusNotFound)
	}
	if hasBody {
		codes = append(codes, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	}
	codes = append(codes, spec.Errors...)
	slices.Sort(codes)
	return slices.Compact(codes)
}

// errorResponses declares codes (and "default", for 5xx) with the error body.
func (s *Server) errorResponses(codes []int) map[string]*huma.Response {
	errSchema := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeOf(apiError{}), true, "ApiError")
	body := func() map[string]*huma.MediaType {
		return map[string]*huma.MediaType{jsonMediaType: {Schema: errSchema}}
	}
	out := map[string]*huma.Response{
		"default": {Description: "Server error (5xx): `{\"error\": \"...\"}`", Content: body()},
	}
	for _, c := range codes {
		r := &huma.Response{Description: http.StatusText(c), Content: body()}
		if c == http.StatusTooManyRequests {
			r.Headers = map[string]*huma.Param{"Retry-After": {
				Description: "seconds to wait before retrying",
				Schema:      &huma.Schema{Type: huma.TypeInteger, Minimum: ptr(1.0)},
			}}
		}
		out[strconv.Itoa(c)] = r
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// hasRequestBody reports whether input type I has a Body field.
func hasRequestBody(t reflect.Type) bool {
	_, ok := t.FieldByName("Body")
	return ok
}

// checkTags panics at startup on an operation the document could not tag.
func checkTags(spec opSpec) {
	if len(spec.Tags) == 0 {
		panic(fmt.Sprintf("operation %s has no tag", spec.OperationID))
	}
	for _, t := range spec.Tags {
		if tagDescriptions[t] == "" {
			panic(fmt.Sprintf("operation %s: tag %q has no entry in tagDescriptions", spec.OperationID, t))
		}
	}
}

// jobResults are the typed results of Job.result, by job type (API.md §4.20).
var jobResults = []struct {
	Types []string
	Type  any
}{
	{[]string{"branch.create", "branch.reset"}, wire.PreviewJobResult{}},
	{[]string{"project.backup"}, wire.BackupJobResult{}},
	{[]string{"project.export"}, wire.ExportJobResult{}},
	{[]string{"project.restore", "instance.pitr_restore"}, wire.RestoreJobResult{}},
	{[]string{"project.extension_enable", "project.extension_disable", "project.extension_update"}, wire.ExtensionJobResult{}},
	{[]string{"project.upgrade_minor"}, wire.MinorUpgradeJobResult{}},
	{[]string{"project.import_follow_start"}, wire.FollowStartJobResult{}},
	{[]string{"project.import_follow_status"}, wire.ImportFollowStatus{}},
	{[]string{"project.import_follow_cutover"}, wire.FollowCutoverJobResult{}},
	{[]string{"project.import_follow_abort"}, wire.FollowAbortJobResult{}},
	{[]string{"project.promote_preview"}, wire.PromoteJobResult{}},
}

// typeDocument completes the document once every operation is registered:
// servers, tags, typed job results and progress, and the enums.
func (s *Server) typeDocument() {
	oapi := s.api.OpenAPI()
	oapi.Servers = []*huma.Server{
		{URL: "/", Description: "this server (relative to the document's origin)"},
		{URL: "/api/capydb", Description: "the same API under the /api/capydb mount"},
	}
	for _, name := range slices.Sorted(maps.Keys(tagDescriptions)) {
		oapi.Tags = append(oapi.Tags, &huma.Tag{Name: name, Description: tagDescriptions[name]})
	}
	reg := oapi.Components.Schemas
	schemas := reg.Map()
	job := schemas["Job"]
	results := &huma.Schema{
		Description: "Set on completion for the job types below; absent otherwise. " +
			"x-capydb-result-by-type maps Job.type to the schema.",
		Extensions: map[string]any{},
	}
	byType := map[string]string{}
	for _, r := range jobResults {
		ref := reg.Schema(reflect.TypeOf(r.Type), true, "")
		results.OneOf = append(results.OneOf, ref)
		for _, t := range r.Types {
			byType[t] = ref.Ref
		}
	}
	results.Extensions["x-capydb-result-by-type"] = byType
	job.Properties["result"] = results
	job.Properties["progress"] = reg.Schema(reflect.TypeOf(wire.JobProgress{}), true, "")
	if d := schemas["EphemeralDatabaseDetails"]; d != nil {
		conn := d.Properties["connections"]
		d.Properties["connections"] = &huma.Schema{Description: conn.Description,
			AnyOf: []*huma.Schema{{Ref: conn.Ref}, {Type: "null"}}}
		d.Properties["connections"].PrecomputeMessages()
	}
	for _, e := range enumFields {
		p := enumProperty(schemas, e)
		p.Enum = nil
		for _, v := range e.Values {
			p.Enum = append(p.Enum, v)
		}
		p.PrecomputeMessages()
	}
}

// enumProperty is the property schema an enumField names; it panics on a
// row the document does not have, so a renamed field cannot be missed.
func enumProperty(schemas map[string]*huma.Schema, e enumField) *huma.Schema {
	sc := schemas[e.Schema]
	if sc == nil {
		panic(fmt.Sprintf("enum for %s.%s: no schema %s", e.Schema, e.Field, e.Schema))
	}
	field, items := e.Field, false
	if f, ok := strings.CutSuffix(field, "[]"); ok {
		field, items = f, true
	}
	p := sc.Properties[field]
	if p == nil {
		panic(fmt.Sprintf("enum for %s.%s: the schema has no such property", e.Schema, e.Field))
	}
	if items {
		if p.Items == nil {
			panic(fmt.Sprintf("enum for %s.%s: not an array", e.Schema, e.Field))
		}
		p = p.Items
	}
	return p
}
