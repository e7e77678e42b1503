package apiclient

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/capydb/capydb/internal/api"
)

// wireSchemas names, for every wire type of this client, the schema(s) of
// the server's OpenAPI document it reads or writes. Types reached through a
// field (ConnectionInfo.app → AppRoleConnectionInfo) are checked through
// the field's schema and need no row.
// Each field must be in every schema of its row.
var wireSchemas = []wireRow{
	{Organization{}, []string{"Organization"}},
	{Principal{}, []string{"Principal"}},
	{Viewer{}, []string{"ViewerOutputBody"}},
	{Project{}, []string{"Project"}},
	{ConnectionInfo{}, []string{"ConnectionInfo"}},
	{Job{}, []string{"Job"}},
	{jobEnvelope{}, []string{"JobOutputBody", "ProjectJobOutputBody", "PreviewJobOutputBody"}},
	{PreviewDatabase{}, []string{"PreviewDatabase"}},
	{APIKey{}, []string{"APIKey"}},
	{CreateAPIKeyRequest{}, []string{"CreateAPIKeyBody"}},
	{WebhookEndpoint{}, []string{"WebhookEndpoint"}},
	{endpointSecret{}, []string{"WebhookEndpointSecretOutputBody"}},
	{CreateWebhookRequest{}, []string{"CreateWebhookEndpointBody"}},
	{WebhookDelivery{}, []string{"WebhookDelivery"}},
	{RegionDetail{}, []string{"RegionDetail"}},
	{PostgresVersion{}, []string{"PostgresVersion"}},
	{CreateProjectRequest{}, []string{"CreateProjectBody"}},
	{CreatePreviewRequest{}, []string{"CreatePreviewBody"}},
	{LoginStartRequest{}, []string{"CLILoginStartBody"}},
	{Status{}, []string{"StatusOutputBody"}},
	{Backup{}, []string{"Backup"}},
	{ScheduledBackup{}, []string{"ScheduledBackup"}},
	{UpsertScheduledBackupRequest{}, []string{"UpsertScheduledBackupRequest"}},
	{ProjectExport{}, []string{"ProjectExport"}},
	{ExportDownload{}, []string{"DownloadStruct"}},
	{CreateRestoreRequest{}, []string{"CreateRestoreRequest"}},
	{PITRRestoreTarget{}, []string{"PITRRestoreTarget"}},
	{RestorePoint{}, []string{"RestorePoint"}},
	{CreateRestorePointRequest{}, []string{"CreateRestorePointRequest"}},
	{CreateImportRequest{}, []string{"CreateImportRequest"}},
	{ImportUpload{}, []string{"UploadStruct"}},
	{ImportPreflightResult{}, []string{"PreflightResult"}},
	{SQLQueryRequest{}, []string{"SQLQueryRequest"}},
	{SQLQueryResult{}, []string{"SQLQueryResult", "TableRowsResult"}},
	{DatabaseTable{}, []string{"DatabaseTable"}},
	{NetworkRestrictions{}, []string{"NetworkRestrictions"}},
	{NetworkRestrictionsRequest{}, []string{"NetworkRestrictionsBody"}},
	{NetworkBan{}, []string{"NetworkBan"}},
	{DatabaseSettings{}, []string{"DatabaseSettings"}},
	{PoolerSettings{}, []string{"PoolerSettings"}},
	{ReadOnlyStatus{}, []string{"ReadOnlyStatus"}},
	{ProjectExtensionStatus{}, []string{"ProjectExtensionStatus"}},
	{Cluster{}, []string{"Cluster"}},
	{Approval{}, []string{"ApprovalStruct"}},
	{UpdateWebhookRequest{}, []string{"UpdateWebhookEndpointBody"}},
}

// unionSchemas are wire types that serve several answers: each field must be
// in one of the row's schemas.
var unionSchemas = []wireRow{
	{LoginSession{}, []string{"CLILoginStartOutputBody", "CLILoginPollOutputBody"}},
}

type wireRow struct {
	v       any
	schemas []string
}

// unpublished are wire types the document cannot check, with the reason.
var unpublished = map[string]string{
	"AppRoleConnectionInfo": "only reached through ConnectionInfo.app (see notServed)",
}

// notServed are client fields (type.json) that API.md describes but this
// server never sends, so its document lacks them. The test fails once the
// document has one, so the list cannot outlive the gap.
var notServed = map[string]string{
	"Project.postgres_warning": "API.md: never set self-hosted (no beta majors)",
	"ConnectionInfo.app":       "the split app role (PRODUCT.md §21.3) is not served yet",
}

// TestClientMatchesOpenAPI is the contract between this hand-written client
// and the server: every JSON field of every wire type exists, with a
// compatible type, in the schema the server publishes at /v1/openapi.json.
// A field renamed on one side only fails here.
func TestClientMatchesOpenAPI(t *testing.T) {
	doc := publishedDocument(t)
	c := &contract{doc: doc, reached: map[string]bool{}}
	for i, w := range append(slices.Clone(wireSchemas), unionSchemas...) {
		union := i >= len(wireSchemas)
		typ := reflect.TypeOf(w.v)
		var merged []*schema
		for _, name := range w.schemas {
			s, ok := doc.Components.Schemas[name]
			if !ok {
				c.failf("%s: the document has no schema %s", typ.Name(), name)
				continue
			}
			if union {
				merged = append(merged, s)
				continue
			}
			c.checkStruct(typ.Name()+"["+name+"]", typ, s)
		}
		if len(merged) > 0 {
			c.checkStruct(typ.Name()+"["+strings.Join(w.schemas, "|")+"]", typ, c.merge(merged))
		}
	}
	for _, f := range c.failures {
		t.Error(f)
	}
	for _, name := range wireTypeNames(t) {
		if !c.reached[name] && unpublished[name] == "" {
			t.Errorf("wire type %s is not checked against the OpenAPI document: add it to wireSchemas", name)
		}
	}
}

type schema struct {
	Ref                  string             `json:"$ref"`
	Type                 any                `json:"type"` // "string" or ["string", "null"]
	Format               string             `json:"format"`
	Properties           map[string]*schema `json:"properties"`
	Items                *schema            `json:"items"`
	AdditionalProperties any                `json:"additionalProperties"`
}

type document struct {
	Components struct {
		Schemas map[string]*schema `json:"schemas"`
	} `json:"components"`
}

// publishedDocument fetches the document the way a client would, from a
// server built like the real one.
func publishedDocument(t *testing.T) *document {
	t.Helper()
	rec := httptest.NewRecorder()
	api.New(api.Deps{Version: "contract-test"}).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/openapi.json", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /v1/openapi.json: %d %s", rec.Code, rec.Body)
	}
	var doc document
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Components.Schemas) < 20 {
		t.Fatalf("only %d schemas in the document", len(doc.Components.Schemas))
	}
	return &doc
}

type contract struct {
	doc      *document
	reached  map[string]bool
	failures []string
}

func (c *contract) failf(format string, args ...any) {
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

func (c *contract) resolve(s *schema) *schema {
	for s != nil && s.Ref != "" {
		s = c.doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
	}
	return s
}

// merge is one object schema with the properties of all of ss (the first
// schema holding a name wins).
func (c *contract) merge(ss []*schema) *schema {
	m := &schema{Type: "object", Properties: map[string]*schema{}}
	for _, s := range ss {
		for k, v := range c.resolve(s).Properties {
			if _, ok := m.Properties[k]; !ok {
				m.Properties[k] = v
			}
		}
	}
	return m
}

// types lists the JSON types a schema allows, without "null"; empty means any.
func (s *schema) types() []string {
	var out []string
	switch v := s.Type.(type) {
	case string:
		out = []string{v}
	case []any:
		for _, x := range v {
			if x, ok := x.(string); ok && x != "null" {
				out = append(out, x)
			}
		}
	}
	return out
}

// checkStruct checks every JSON field of the struct type typ (at path) in s.
func (c *contract) checkStruct(path string, typ reflect.Type, s *schema) {
	if typ.Name() != "" {
		c.reached[typ.Name()] = true
	}
	s = c.resolve(s)
	if s == nil {
		c.failf("%s: unresolvable schema reference", path)
		return
	}
	if ts := s.types(); len(ts) > 0 && !slices.Contains(ts, "object") {
		c.failf("%s: the server publishes %v, the client reads an object", path, ts)
		return
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, ok := jsonName(f)
		if !ok {
			continue
		}
		if f.Anonymous && name == "" {
			c.checkStruct(path, deref(f.Type), s)
			continue
		}
		prop, ok := s.Properties[name]
		if reason := notServed[typ.Name()+"."+name]; reason != "" {
			if ok {
				c.failf("%s.%s is listed as not served (%s), but the document has it now: check it and drop it from notServed", path, name, reason)
			}
			continue
		}
		if !ok {
			c.failf("%s.%s (json %q): the server's schema has no such field (it has %s)", path, f.Name, name, keys(s.Properties))
			continue
		}
		c.checkValue(path+"."+name, f.Type, prop)
	}
}

var timeType = reflect.TypeOf(time.Time{})

// checkValue checks that a Go value of type typ can hold what s describes.
func (c *contract) checkValue(path string, typ reflect.Type, s *schema) {
	typ = deref(typ)
	s = c.resolve(s)
	if s == nil {
		c.failf("%s: unresolvable schema reference", path)
		return
	}
	ts := s.types()
	want := ""
	switch {
	case typ == timeType:
		want = "string"
		if len(ts) > 0 && s.Format != "date-time" {
			c.failf("%s: the client reads a time, the server publishes %v format %q", path, ts, s.Format)
		}
	case typ == reflect.TypeOf(json.RawMessage(nil)) || typ.Kind() == reflect.Interface:
		return
	case typ.Kind() == reflect.Struct:
		c.checkStruct(path, typ, s)
		return
	case typ.Kind() == reflect.String:
		want = "string"
	case typ.Kind() == reflect.Bool:
		want = "boolean"
	case typ.Kind() >= reflect.Int && typ.Kind() <= reflect.Uint64:
		want = "integer"
	case typ.Kind() == reflect.Float32 || typ.Kind() == reflect.Float64:
		if len(ts) > 0 && !slices.Contains(ts, "number") && !slices.Contains(ts, "integer") {
			c.failf("%s: the client reads a number, the server publishes %v", path, ts)
		}
		return
	case typ.Kind() == reflect.Slice || typ.Kind() == reflect.Array:
		want = "array"
	case typ.Kind() == reflect.Map:
		want = "object"
	default:
		c.failf("%s: the client's Go type %s has no JSON counterpart", path, typ)
		return
	}
	if len(ts) == 0 { // the server publishes any value
		return
	}
	if !slices.Contains(ts, want) {
		c.failf("%s: the client reads %s (%s), the server publishes %v", path, want, typ, ts)
		return
	}
	if want == "array" && s.Items != nil {
		c.checkValue(path+"[]", typ.Elem(), s.Items)
	}
	if want == "object" && typ.Kind() == reflect.Map {
		if ap, ok := s.AdditionalProperties.(map[string]any); ok {
			b, _ := json.Marshal(ap)
			var items schema
			if json.Unmarshal(b, &items) == nil {
				c.checkValue(path+"{}", typ.Elem(), &items)
			}
		}
	}
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonName is the field's JSON name; ok is false for fields JSON skips.
func jsonName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("json")
	if tag == "-" || (!f.IsExported() && !f.Anonymous) {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" && !f.Anonymous {
		name = f.Name
	}
	return name, true
}

func keys(m map[string]*schema) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// wireTypeNames lists the package's named struct types that carry json tags
// or embed a type of internal/wire.
func wireTypeNames(t *testing.T) []string {
	t.Helper()
	pkgs, err := parser.ParseDir(token.NewFileSet(), ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pkg := range pkgs {
		for _, file := range pkg.Files {
			for _, decl := range file.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.TYPE {
					continue
				}
				for _, spec := range gd.Specs {
					ts := spec.(*ast.TypeSpec)
					if st, ok := ts.Type.(*ast.StructType); ok && (hasJSONTag(st) || embedsWire(st)) {
						names = append(names, ts.Name.Name)
					}
				}
			}
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d wire types in the package source", len(names))
	}
	return names
}

func embedsWire(st *ast.StructType) bool {
	for _, f := range st.Fields.List {
		if sel, ok := f.Type.(*ast.SelectorExpr); ok && len(f.Names) == 0 {
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "wire" {
				return true
			}
		}
	}
	return false
}

func hasJSONTag(st *ast.StructType) bool {
	for _, f := range st.Fields.List {
		if f.Tag != nil && strings.Contains(f.Tag.Value, `json:"`) {
			return true
		}
	}
	return false
}
