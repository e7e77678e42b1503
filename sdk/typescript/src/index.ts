// @capydb/sdk: the typed CapyDB API client. Everything under gen/ is generated
// from the server's OpenAPI document by @hey-api/openapi-ts (`make sdk`).
export * from './gen';
export { client } from './gen/client.gen';
