// Package sdkcheck keeps sdk/typescript (the typed TypeScript SDK generated
// by @hey-api/openapi-ts) current with the OpenAPI document the server
// serves. Its test regenerates the SDK into a scratch directory and fails on
// any difference; `make sdk` (CAPYDB_UPDATE_SDK=1) writes it in place.
package sdkcheck
