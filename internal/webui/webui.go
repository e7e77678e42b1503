// Package webui serves the dashboard single-page app at /dashboard/…: hashed
// assets with a year of immutable caching, every other path the app's
// index.html (no-store, so a new build is picked up at once), all under a
// strict Content-Security-Policy with no inline script. When the binary was
// built without the web build, it serves a page saying how to build it.
package webui

import (
	"bytes"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is where the dashboard is served.
const Prefix = "/dashboard"

// CSP allows only same-origin scripts, styles, images and API calls; no
// inline script, no framing, no plugins.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the dashboard from fsys (index.html and assets/).
func Handler(fsys fs.FS) http.Handler {
	index, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		index = nil
	}
	started := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			h.Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusMethodNotAllowed)
			_, _ = io.WriteString(w, "{\"error\":\"method not allowed\"}\n")
			return
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, Prefix), "/")
		if index == nil {
			h.Set("Cache-Control", "no-store")
			h.Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, notBuilt)
			return
		}
		if rel != "" && rel != "index.html" {
			if b, err := fs.ReadFile(fsys, path.Clean(rel)); err == nil {
				if ct := mime.TypeByExtension(path.Ext(rel)); ct != "" {
					h.Set("Content-Type", ct)
				}
				if strings.HasPrefix(rel, "assets/") {
					// Vite puts a content hash in every asset name.
					h.Set("Cache-Control", "public, max-age=31536000, immutable")
				} else {
					h.Set("Cache-Control", "no-cache")
				}
				http.ServeContent(w, r, rel, started, bytes.NewReader(b))
				return
			}
			if strings.HasPrefix(rel, "assets/") || path.Ext(rel) != "" {
				h.Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, "{\"error\":\"not found\"}\n")
				return
			}
		}
		// Every other path is a route of the app.
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(index)
		}
	})
}

const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CapyDB dashboard not built</title></head>
<body><main><h1>The CapyDB dashboard is not built into this binary</h1>
<p>This <code>capydb</code> was built with a plain <code>go build</code>, without the web app.
The API works as usual under <code>/v1</code>.</p>
<p>To build the dashboard (needs Node.js 20+ and npm), run <code>make build</code> (or <code>make web</code>
and then <code>go build ./cmd/capydb</code>) in the repository and start the server again.</p>
</main></body></html>
`
