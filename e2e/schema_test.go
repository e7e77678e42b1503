package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/capydb/capydb/internal/api"
)

// Every answer an e2e test receives from an API operation is checked
// against the published OpenAPI document (the document a server built like
// the real one serves): its status must be declared by the operation, and
// its body must validate against the declared schema — required fields,
// types, enums, lists never null, no undeclared fields.

type docRoute struct {
	method string
	re     *regexp.Regexp
	op     *huma.Operation
}

var (
	docOnce   sync.Once
	docReg    huma.Registry
	docRoutes []docRoute
)

func loadDocument() {
	oapi := api.New(api.Deps{Version: "e2e-schema"}).OpenAPI()
	docReg = oapi.Components.Schemas
	param := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range oapi.Paths {
		re := regexp.MustCompile("^" + param.ReplaceAllString(path, `[^/]+`) + "$")
		for method, op := range map[string]*huma.Operation{
			http.MethodGet: item.Get, http.MethodPost: item.Post, http.MethodPut: item.Put,
			http.MethodPatch: item.Patch, http.MethodDelete: item.Delete,
		} {
			if op != nil {
				docRoutes = append(docRoutes, docRoute{method, re, op})
			}
		}
	}
}

// checkAnswer validates one answer; routes outside the document (operator
// endpoints, signed object URLs, the dashboard page) are not checked.
func checkAnswer(t testing.TB, method, rawPath string, status int, contentType string, raw []byte) {
	t.Helper()
	docOnce.Do(loadDocument)
	path, _, _ := strings.Cut(rawPath, "?")
	path = strings.TrimPrefix(path, "/api/capydb")
	if len(path) > 1 {
		path = strings.TrimRight(path, "/")
	}
	var op *huma.Operation
	for _, r := range docRoutes {
		if r.method == method && r.re.MatchString(path) {
			op = r.op
			break
		}
	}
	if op == nil || path == "/v1/openapi.json" {
		return
	}
	resp := op.Responses[strconv.Itoa(status)]
	if resp == nil && status >= 500 {
		resp = op.Responses["default"]
	}
	if resp == nil {
		t.Errorf("%s %s answered %d, which operation %s does not declare: %s", method, rawPath, status, op.OperationID, raw)
		return
	}
	if len(raw) == 0 {
		return
	}
	mt := resp.Content["application/json"]
	if mt == nil && len(resp.Content) > 0 {
		return // a declared non-JSON body (e.g. a PEM file) is not validated here
	}
	if mt == nil || mt.Schema == nil {
		t.Errorf("%s %s answered %d with a body, but the document declares none", method, rawPath, status)
		return
	}
	if !strings.HasPrefix(contentType, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, rawPath, contentType)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Errorf("%s %s: body is not JSON: %s", method, rawPath, raw)
		return
	}
	res := &huma.ValidateResult{}
	huma.Validate(docReg, mt.Schema, huma.NewPathBuffer([]byte{}, 0), huma.ModeReadFromServer, v, res)
	for _, err := range res.Errors {
		t.Errorf("%s %s (%d, %s): the answer does not match the document: %v\n%s", method, rawPath, status, op.OperationID, err, raw)
	}
}
