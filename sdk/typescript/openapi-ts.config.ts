import { defineConfig } from '@hey-api/openapi-ts';

// The input is the document the server serves at /v1/openapi.json, written to
// a file by `make sdk` (internal/api/sdkcheck); OPENAPI_OUT lets the currency
// test generate into a scratch directory and compare.
export default defineConfig({
  input: process.env.OPENAPI_DOC ?? 'openapi.json',
  output: { path: process.env.OPENAPI_OUT ?? 'src/gen' },
  plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
});
