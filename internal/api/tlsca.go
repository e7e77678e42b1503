package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

// CACertOutput is GET /v1/ca.pem: the PEM certificate(s) clients verify
// the database ports against (sslrootcert).
type CACertOutput struct {
	ContentType  string `header:"Content-Type"`
	CacheControl string `header:"Cache-Control"`
	Body         []byte
}

// registerCACert serves the CA publicly: it is no secret, and clients need
// it before they hold any credential (env pull, CI images, psql).
func (s *Server) registerCACert() {
	register(s, opSpec{AccessRule: AccessRule{OperationID: "getCACertificate", Method: http.MethodGet, Path: "/v1/ca.pem", Anonymous: true},
		Summary: "CA certificate of the database ports",
		Description: "† (self-hosted addition) The PEM CA certificate that signs the server certificate of the direct " +
			"and pooled ports, for `sslrootcert=<file>&sslmode=verify-full`. 404 when the operator's certificate " +
			"chains to a public CA and no `--tls-ca` was given (clients then use their system roots).",
		Tags: []string{"status"}},
		func(ctx context.Context, _ *struct{}) (*CACertOutput, error) {
			var pem []byte
			var err error
			if s.deps.CACert != nil {
				pem, err = s.deps.CACert()
			}
			if err != nil {
				s.deps.Log.Error("could not read the CA certificate", "error", err)
				return nil, errorf(http.StatusServiceUnavailable, "the CA certificate cannot be read right now")
			}
			if len(pem) == 0 {
				return nil, errorf(http.StatusNotFound, "this server has no CA certificate to hand out: its database certificate is expected to chain to a CA your system already trusts (use sslrootcert=system with libpq)")
			}
			// Short cache: an operator may rotate the CA.
			return &CACertOutput{ContentType: "application/x-pem-file", CacheControl: "public, max-age=300", Body: pem}, nil
		})
	// huma documents a []byte body as base64 JSON; the answer is PEM text.
	if r := s.api.OpenAPI().Paths["/v1/ca.pem"].Get.Responses["200"]; r != nil {
		r.Content = map[string]*huma.MediaType{"application/x-pem-file": {Schema: &huma.Schema{Type: "string"}}}
	}
}
