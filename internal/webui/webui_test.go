package webui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	if rec.Header().Get("Content-Security-Policy") != CSP || rec.Header().Get("X-Frame-Options") != "DENY" ||
		rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%s %s: security headers %v", method, path, rec.Header())
	}
	return rec
}

func TestServesTheBuild(t *testing.T) {
	const index = `<!doctype html><script type="module" src="/dashboard/assets/index-abc123.js"></script>`
	h := Handler(fstest.MapFS{
		"index.html":              {Data: []byte(index)},
		"assets/index-abc123.js":  {Data: []byte("console.log(1)")},
		"assets/index-abc123.css": {Data: []byte("body{}")},
		".keep":                   {Data: nil},
	})
	for _, c := range []struct {
		path, status, ctype, cache, body string
	}{
		{"/dashboard", "200", "text/html", "no-store", index},
		{"/dashboard/projects/prj_1/backups", "200", "text/html", "no-store", index},
		{"/dashboard/index.html", "200", "text/html", "no-store", index},
		{"/dashboard/assets/index-abc123.js", "200", "text/javascript", "public, max-age=31536000, immutable", "console.log(1)"},
		{"/dashboard/assets/index-abc123.css", "200", "text/css", "public, max-age=31536000, immutable", "body{}"},
		{"/dashboard/assets/gone-000.js", "404", "application/json", "", `{"error":"not found"}`},
		{"/dashboard/favicon.ico", "404", "application/json", "", `{"error":"not found"}`},
	} {
		rec := get(t, h, "GET", c.path)
		if got := rec.Result().Status[:3]; got != c.status || !strings.HasPrefix(rec.Header().Get("Content-Type"), c.ctype) ||
			rec.Header().Get("Cache-Control") != c.cache || strings.TrimSpace(rec.Body.String()) != c.body {
			t.Errorf("GET %s: %s %q cache %q body %q", c.path, got, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"), rec.Body.String())
		}
	}
	if rec := get(t, h, "POST", "/dashboard/projects"); rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" || !strings.Contains(rec.Body.String(), "method not allowed") {
		t.Errorf("POST: %d %s", rec.Code, rec.Body)
	}
	if rec := get(t, h, "HEAD", "/dashboard/"); rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d %q", rec.Code, rec.Body)
	}
}

// A binary built without `make web` embeds only web/dist/.keep.
func TestNotBuiltPage(t *testing.T) {
	h := Handler(fstest.MapFS{".keep": {Data: nil}})
	for _, p := range []string{"/dashboard", "/dashboard/projects", "/dashboard/assets/x.js"} {
		rec := get(t, h, "GET", p)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "make build") || rec.Header().Get("Cache-Control") != "no-store" ||
			strings.Contains(rec.Body.String(), "<script") {
			t.Errorf("GET %s: %d %s", p, rec.Code, rec.Body)
		}
	}
}
