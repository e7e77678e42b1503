package api

import (
	"context"
	"encoding/json"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/capydb/capydb/internal/auth"
	"github.com/capydb/capydb/internal/lifecycle"
	"github.com/capydb/capydb/internal/plan"
	"github.com/capydb/capydb/internal/queue"
	"github.com/capydb/capydb/internal/store"
	"github.com/capydb/capydb/internal/webhooks"
)

type docSchema struct {
	Type       any                   `json:"type"`
	Enum       []any                 `json:"enum"`
	Properties map[string]*docSchema `json:"properties"`
	Items      *docSchema            `json:"items"`
	Required   []string              `json:"required"`
	OneOf      []*docSchema          `json:"oneOf"`
	Ref        string                `json:"$ref"`
}

type docResponse struct {
	Content map[string]struct {
		Schema *docSchema `json:"schema"`
	} `json:"content"`
	Headers map[string]any `json:"headers"`
}

type docOperation struct {
	OperationID string                  `json:"operationId"`
	Tags        []string                `json:"tags"`
	Security    *[]map[string][]string  `json:"security"`
	Responses   map[string]*docResponse `json:"responses"`
	RequestBody *docResponse            `json:"requestBody"`
}

type servedDoc struct {
	Servers []struct {
		URL string `json:"url"`
	} `json:"servers"`
	Tags []struct {
		Name, Description string
	} `json:"tags"`
	Paths      map[string]map[string]*docOperation `json:"paths"`
	Components struct {
		Schemas map[string]*docSchema `json:"schemas"`
	} `json:"components"`
}

func serve(t *testing.T, s *Server, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func servedDocument(t *testing.T) *servedDoc {
	t.Helper()
	rec := serve(t, New(Deps{Version: "contract-test"}), "GET", "/v1/openapi.json")
	if rec.Code != 200 {
		t.Fatalf("GET /v1/openapi.json: %d", rec.Code)
	}
	var d servedDoc
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Paths) < 40 {
		t.Fatalf("only %d paths", len(d.Paths))
	}
	return &d
}

func enumOf(t *testing.T, d *servedDoc, schema, field string) []string {
	t.Helper()
	s := d.Components.Schemas[schema]
	if s == nil {
		t.Fatalf("no schema %s", schema)
	}
	name, items := strings.CutSuffix(field, "[]")
	p := s.Properties[name]
	if p == nil {
		t.Fatalf("%s has no property %s", schema, name)
	}
	if items {
		p = p.Items
	}
	var out []string
	for _, v := range p.Enum {
		out = append(out, v.(string))
	}
	return out
}

// TestEnumsAreTheGoConstants: the enums of the served document are the
// value sets the code uses, named here independently of enums.go.
func TestEnumsAreTheGoConstants(t *testing.T) {
	d := servedDocument(t)
	want := map[string][]string{
		"Project.state":                    {store.ProjectProvisioning, store.ProjectReady, store.ProjectRestoring, store.ProjectImporting, store.ProjectDeleting, store.ProjectFailed},
		"Project.environment":              {"production", "non_production"},
		"CreateProjectBody.environment":    {"production", "non_production", ""},
		"Project.plan":                     slices.Collect(maps.Keys(plan.Defaults)),
		"PreviewDatabase.state":            {store.PreviewProvisioning, store.PreviewReady, store.PreviewResetting, store.PreviewDeleting, store.PreviewFailed},
		"PreviewDatabase.mode":             {store.PreviewModeEmpty, store.PreviewModeClone},
		"Job.state":                        {queue.StatePending, queue.StateRunning, queue.StateCompleted, queue.StateFailed},
		"Job.type":                         slices.Collect(maps.Keys((&lifecycle.Service{}).Handlers())),
		"Job.retry_classification":         {queue.Transient, queue.Permanent, ""},
		"Backup.state":                     {store.BackupRunning, store.BackupCompleted, store.BackupFailed, store.BackupExpired},
		"Backup.verification_state":        {store.VerifyPending, store.VerifyVerified, store.VerifyFailed, store.VerifyUnverified},
		"CreateRestoreRequest.target_kind": {lifecycle.TargetNewPreview, lifecycle.TargetPreview, lifecycle.TargetProject, ""},
		"RestoreJobResult.target_kind":     {lifecycle.TargetNewPreview, lifecycle.TargetPreview, lifecycle.TargetProject},
		"APIKey.scopes[]":                  append([]string{auth.ScopeAll}, auth.AllScopes...),
		"ApprovalBody.action":              lifecycle.ApprovalActions,
		"WebhookEndpoint.event_types[]":    webhooks.Catalogue,
		"WebhookDelivery.event_type":       append(slices.Clone(webhooks.Catalogue), webhooks.TestEvent),
		"WebhookDelivery.state":            {store.DeliveryPending, store.DeliveryDelivered, store.DeliveryFailed},
	}
	for key, values := range want {
		schema, field, _ := strings.Cut(key, ".")
		got := enumOf(t, d, schema, field)
		if !sameSet(got, values) {
			t.Errorf("%s: document enum %q, Go constants %q", key, got, values)
		}
	}
	if len(want["Job.type"]) < 12 {
		t.Errorf("only %d job types", len(want["Job.type"]))
	}
	// Every row of enumFields reached the document with exactly its values.
	for _, e := range enumFields {
		if got := enumOf(t, d, e.Schema, e.Field); !sameSet(got, e.Values) || len(got) == 0 {
			t.Errorf("%s.%s: document enum %q, enumFields %q", e.Schema, e.Field, got, e.Values)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}

// TestDocumentShape: servers, described tags on every operation, explicit
// security, the derived 4xx answers with the error body under the one JSON
// media type, Retry-After on 429, no 422, lists never nullable, typed job
// results, and the two mismatches of issue 12 fixed.
func TestDocumentShape(t *testing.T) {
	d := servedDocument(t)
	if len(d.Servers) == 0 || d.Servers[0].URL != "/" {
		t.Errorf("servers = %+v, want the relative / first", d.Servers)
	}
	tags := map[string]bool{}
	for _, tg := range d.Tags {
		if tg.Description == "" {
			t.Errorf("tag %s has no description", tg.Name)
		}
		tags[tg.Name] = true
	}
	ops := 0
	for path, item := range d.Paths {
		for method, op := range item {
			ops++
			where := strings.ToUpper(method) + " " + path
			if len(op.Tags) == 0 {
				t.Errorf("%s: no tag", where)
			}
			for _, tg := range op.Tags {
				if !tags[tg] {
					t.Errorf("%s: tag %s is not in the top-level tags", where, tg)
				}
			}
			if op.Security == nil {
				t.Errorf("%s: no security (anonymous operations say security: [])", where)
				continue
			}
			authed := len(*op.Security) > 0
			want := []string{"400", "default"}
			if authed {
				want = append(want, "401", "429")
			}
			if strings.Contains(path, "{") {
				want = append(want, "404")
			}
			for _, code := range want {
				if op.Responses[code] == nil {
					t.Errorf("%s: no %s response", where, code)
				}
			}
			if op.Responses["422"] != nil {
				t.Errorf("%s: declares 422, which this server never answers (validation is 400)", where)
			}
			if r := op.Responses["429"]; r != nil && r.Headers["Retry-After"] == nil {
				t.Errorf("%s: 429 without Retry-After", where)
			}
			for code, r := range op.Responses {
				for ct := range r.Content {
					// The one non-JSON success: the CA certificate (PEM).
					if ct != "application/json" && !(op.OperationID == "getCACertificate" && code == "200" && ct == "application/x-pem-file") {
						t.Errorf("%s %s: media type %q", where, code, ct)
					}
				}
				if code >= "400" && r.Content["application/json"].Schema.Ref != "#/components/schemas/ApiError" {
					t.Errorf("%s %s: not the error schema", where, code)
				}
			}
		}
	}
	if ops < 50 {
		t.Fatalf("only %d operations", ops)
	}
	requestOnly := map[string]bool{} // request bodies may accept null lists
	for _, item := range d.Paths {
		for _, op := range item {
			if op.RequestBody != nil {
				ref := op.RequestBody.Content["application/json"].Schema.Ref
				requestOnly[strings.TrimPrefix(ref, "#/components/schemas/")] = true
			}
		}
	}
	for name, s := range d.Components.Schemas {
		if requestOnly[name] {
			continue
		}
		for pname, p := range s.Properties {
			if types, ok := p.Type.([]any); ok && slices.Contains(types, "array") && slices.Contains(types, "null") {
				t.Errorf("%s.%s: a nullable list", name, pname)
			}
		}
	}
	kv := d.Paths["/v1/projects/{projectID}/kv"]["get"]
	if kv.Responses["404"] == nil || kv.Responses["204"] != nil || kv.Responses["200"] != nil {
		t.Errorf("getProjectKvStore declares %v, want 404 and no 2xx", slices.Collect(maps.Keys(kv.Responses)))
	}
	sched := d.Components.Schemas["UpsertScheduledBackupRequest"]
	for _, f := range []string{"cron_hour", "cron_minute", "is_active"} {
		if !slices.Contains(sched.Required, f) || sched.Properties[f].Type == nil {
			t.Errorf("UpsertScheduledBackupRequest.%s: not required", f)
		}
		if _, nullable := sched.Properties[f].Type.([]any); nullable {
			t.Errorf("UpsertScheduledBackupRequest.%s: required and nullable, but null is refused", f)
		}
	}
	job := d.Components.Schemas["Job"]
	if n := len(job.Properties["result"].OneOf); n != len(jobResults) {
		t.Errorf("Job.result has %d variants, want %d", n, len(jobResults))
	}
	if job.Properties["progress"].Ref != "#/components/schemas/JobProgress" {
		t.Errorf("Job.progress is %+v", job.Properties["progress"])
	}
	if pitr := d.Components.Schemas["RestoreCreateOutBody"].Properties["pitr"]; pitr == nil || pitr.Ref != "#/components/schemas/PITRRestoreTarget" {
		t.Errorf("restore pitr is %+v", pitr)
	}
	types := lifecycle.JobTypes()
	for _, r := range jobResults {
		for _, ty := range r.Types {
			if !slices.Contains(types, ty) {
				t.Errorf("jobResults names %s, which no handler runs", ty)
			}
		}
	}
}

// TestErrorMediaType: an error is served as application/json with a charset
// (API.md §1.5), the media type the document declares.
func TestErrorMediaType(t *testing.T) {
	rec := serve(t, New(Deps{Version: "contract-test"}), "GET", "/v1/jobs/job_x")
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("GET /v1/jobs/job_x without a credential: %d %s", rec.Code, rec.Body)
	}
	ct := rec.Header().Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type %q, want application/json; charset=utf-8", ct)
	}
}

// TestNilSlicesAnsweredAsEmpty: a handler's nil lists, nested too, go out as
// [] (omitempty ones stay absent), and the handler's value is not changed.
func TestNilSlicesAnsweredAsEmpty(t *testing.T) {
	type inner struct {
		Tags []string `json:"tags"`
	}
	type out struct {
		Body struct {
			Items   []*inner         `json:"items"`
			Nested  *inner           `json:"nested"`
			Values  []inner          `json:"values"`
			Skipped []string         `json:"skipped,omitempty"`
			Raw     json.RawMessage  `json:"raw,omitempty"`
			ByName  map[string][]int `json:"by_name"`
		}
	}
	shared := &out{}
	shared.Body.Nested = &inner{}
	shared.Body.Values = []inner{{}}
	shared.Body.ByName = map[string][]int{"a": nil}
	s := New(Deps{Version: "contract-test"})
	register(s, opSpec{AccessRule: AccessRule{OperationID: "testNilSlices", Method: http.MethodGet, Path: "/v1/test-nil-slices", Anonymous: true},
		Tags: []string{"status"}}, func(context.Context, *struct{}) (*out, error) { return shared, nil })
	rec := serve(t, s, "GET", "/v1/test-nil-slices")
	const want = `{"items":[],"nested":{"tags":[]},"values":[{"tags":[]}],"by_name":{"a":[]}}`
	if got := strings.TrimSpace(rec.Body.String()); rec.Code != 200 || got != want {
		t.Errorf("got %d %s, want %s", rec.Code, got, want)
	}
	if shared.Body.Items != nil || shared.Body.Nested.Tags != nil || shared.Body.ByName["a"] != nil {
		t.Error("the handler's value was changed in place")
	}
}

// TestRequestEnumMessages: a request value outside a field's enum is 400
// with the field's own message, not huma's generic one.
func TestRequestEnumMessages(t *testing.T) {
	s := New(Deps{Version: "contract-test"})
	for body, want := range map[string]string{
		`{"source":"bot"}`:     "source must be cli or agent",
		`{"scopes":["root"]}`:  `scopes: unknown scope "root"`,
		`{"scopes":["*", ""]}`: `scopes: unknown scope ""`,
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/cli/login/sessions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		s.ServeHTTP(rec, req)
		var got struct{ Error string }
		_ = json.Unmarshal(rec.Body.Bytes(), &got)
		if rec.Code != http.StatusBadRequest || got.Error != want {
			t.Errorf("%s: %d %q, want 400 %q", body, rec.Code, got.Error, want)
		}
	}
	if msg, ok := enumMessage("source", `expected value to be one of "x, y"`, "z"); ok {
		t.Errorf("a source field with other values got the device-login message %q", msg)
	}
}
