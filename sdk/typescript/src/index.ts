// @capydb/sdk: the typed CapyDB API client. Everything under gen/ is generated
// from the server's OpenAPI document by @hey-api/openapi-ts (`make sdk`);
// capydb.ts adds createCapyDB (typed errors, job waiting).
export * from './gen';
export { client } from './gen/client.gen';
export { createCapyDB, CapyDBError, JobFailedError } from './capydb';
export type { CapyDB, CapyDBOptions } from './capydb';
