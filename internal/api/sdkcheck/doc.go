// Package sdkcheck keeps the generated clients current with the OpenAPI
// document the server serves: sdk/typescript/src/gen (by @hey-api/openapi-ts)
// and pkg/capydb/capydb.gen.go (by oapi-codegen, pinned in the tools/oapi-codegen module).
// Its tests regenerate each into a scratch directory and fail on any
// difference; `make sdk` (CAPYDB_UPDATE_SDK=1) writes them in place.
package sdkcheck
