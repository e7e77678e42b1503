// Package openapilint holds only a test: it lints the OpenAPI document the
// server serves with Redocly and Spectral, and checks that clients generated
// from it (TypeScript by @hey-api/openapi-ts, Go by oapi-codegen) compile
// and carry the types the document promises. The tools are pinned in
// tools/node/openapi-lint (npm) and tools/oapi-codegen (a Go tools module).
package openapilint
