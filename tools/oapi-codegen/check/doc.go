// Package check holds nothing committed: the OpenAPI lint test writes the
// oapi-codegen client here (client_gen.go, git-ignored) and builds it.
package check
