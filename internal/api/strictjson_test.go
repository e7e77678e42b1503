package api

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStrictUnmarshal(t *testing.T) {
	type inner struct {
		Key string `json:"key"`
	}
	type embedded struct {
		Note string `json:"note"`
	}
	type body struct {
		embedded
		GraceHours int               `json:"grace_hours"`
		Items      []inner           `json:"items"`
		Labels     map[string]string `json:"labels"`
		Free       map[string]any    `json:"free"`
	}
	for in, want := range map[string]string{
		`{"grace_hours":0,"GRACE_HOURS":100000}`: `unknown field "GRACE_HOURS"`,
		`{"grace_hours":1,"grace_hours":2}`:      `duplicate key "grace_hours"`,
		`{"items":[{"key":"a"},{"KEY":"b"}]}`:    `unknown field "items[1].KEY"`,
		`{"items":[{"key":"a","key":"b"}]}`:      `duplicate key "items[0].key"`,
		`{"free":{"a":{"b":1,"b":2}}}`:           `duplicate key "free.a.b"`,
		`{"Note":"x"}`:                           `unknown field "Note"`,
		`{"labels":{"k":"a\u0000"}}`:             `invalid field "labels.k": must not contain a NUL`,
		`{"items":[{"key":"\u0000"}]}`:           `invalid field "items[0].key": must not contain a NUL`,
		`{"a\u0000":1}`:                          "key with a NUL",
		`{"grace_hours":`:                        "unexpected end of JSON",
	} {
		var b body
		err := strictUnmarshal([]byte(in), &b)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", in, err, want)
		}
	}
	var top any
	if err := strictUnmarshal([]byte(`"\u0000"`), &top); err == nil || !strings.Contains(err.Error(), "the request body must not contain a NUL") {
		t.Errorf("top-level NUL string: %v", err)
	}
	// Map keys are data: case variants are distinct keys there, and what is
	// exact decodes as usual.
	var b body
	if err := strictUnmarshal([]byte(`{"grace_hours":7,"note":"n","labels":{"a":"1","A":"2"},"items":[{"key":"k"}]}`), &b); err != nil {
		t.Fatal(err)
	}
	if b.GraceHours != 7 || b.Note != "n" || b.Labels["A"] != "2" || b.Items[0].Key != "k" {
		t.Fatalf("decoded %+v", b)
	}
}

func TestCheckRequestURL(t *testing.T) {
	for target, want := range map[string]string{
		"/v1/projects/prj_1":             "",
		"/v1/projects/":                  "",
		"/v1/projects?limit=2&cursor=ab": "",
		"/":                              "",
		"/v1/projects/x%00":              "NUL",
		"/v1/projects?cursor=%00":        `query parameter "cursor"`,
		"/v1/projects/../jobs":           `".."`,
		"/v1/./projects":                 `"."`,
		"/v1//projects":                  "empty",
	} {
		got := checkRequestURL(httptest.NewRequest("GET", target, nil))
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", target, got, want)
		}
	}
}

func TestRedactPath(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/object-downloads/tok":             "/v1/object-downloads/REDACTED",
		"/api/capydb/v1/object-uploads/tok/..": "/api/capydb/v1/object-uploads/REDACTED",
		"/v1/projects/prj_1":                   "/v1/projects/prj_1",
	} {
		if got := redactPath(in); got != want {
			t.Errorf("redactPath(%q) = %q, want %q", in, got, want)
		}
	}
}
