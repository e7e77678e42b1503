// Package web embeds the dashboard's production build (web/dist, made by
// `make web`: npm ci + vite build). The directory is committed with only a
// .keep file, so a plain `go build` works without Node.js and the server
// then serves a page saying how to build the dashboard.
package web

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

// Dist is the built dashboard (index.html and assets/), possibly empty.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err)
	}
	return sub
}
