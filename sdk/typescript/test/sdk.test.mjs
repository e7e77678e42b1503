// The packed @capydb/sdk against a real server (CAPYDB_API_URL,
// CAPYDB_API_KEY), run by Node's test runner from e2e TestTypeScriptSDKPackage
// in a scratch project that installed the tarball `npm pack` made.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCapyDB, CapyDBError, JobFailedError, listProjects } from '@capydb/sdk';

const baseUrl = process.env.CAPYDB_API_URL;
const apiKey = process.env.CAPYDB_API_KEY;

test('the package exports the client, its errors and the raw operations', () => {
  assert.equal(typeof createCapyDB, 'function');
  assert.equal(typeof listProjects, 'function');
  assert.ok(new CapyDBError('x', 404, 'nope') instanceof Error);
  assert.equal(typeof JobFailedError, 'function');
  assert.throws(() => createCapyDB({ baseUrl: '' }), /baseUrl/);
});

test('create a project, wait for it, run SQL, delete it', async () => {
  const capydb = createCapyDB({ apiKey, baseUrl: baseUrl + '/' });
  const before = await capydb.listProjects();
  assert.ok(Array.isArray(before.projects));

  const created = await capydb.createProject({ body: { name: 'TS SDK', environment: 'non_production' } });
  assert.equal(created.project.slug, 'ts-sdk');
  assert.match(created.job.id, /^job_/);
  const job = await capydb.waitForJob(created.job.id, { timeoutMs: 120_000 });
  assert.equal(job.state, 'completed');

  const id = created.project.id;
  const { project } = await capydb.getProject({ path: { projectID: id } });
  assert.equal(project.state, 'ready');
  const { connections } = await capydb.getProjectConnections({ path: { projectID: id } });
  assert.match(connections.direct_url, /^postgres(ql)?:\/\//);
  assert.notEqual(connections.direct_url, connections.pooled_url);

  const { result } = await capydb.runProjectSql({
    path: { projectID: id },
    body: { query: 'select current_database() as db, 41 + 1 as answer' },
  });
  assert.deepEqual(result.columns, ['db', 'answer']);
  assert.equal(result.rows[0].answer, 42);
  assert.equal(result.rows[0].db, project.database_name);

  const deleted = await capydb.deleteProject({ path: { projectID: id } });
  assert.equal((await capydb.waitForJob(deleted.job.id, { timeoutMs: 120_000 })).state, 'completed');
  await assert.rejects(capydb.getProject({ path: { projectID: id } }), (e) => e instanceof CapyDBError && e.status === 404);
});

test("the server's errors are CapyDBError with status and message", async () => {
  const capydb = createCapyDB({ apiKey, baseUrl });
  await assert.rejects(capydb.getProject({ path: { projectID: 'prj_doesnotexist' } }), (e) => {
    assert.ok(e instanceof CapyDBError);
    assert.equal(e.status, 404);
    assert.equal(e.operation, 'getProject');
    assert.ok(e.message.length > 'getProject: 404: '.length, e.message);
    return true;
  });
  await assert.rejects(capydb.createProject({ body: { name: '' } }), (e) => e instanceof CapyDBError && e.status === 400);
  await assert.rejects(capydb.runProjectSql({ path: { projectID: 'prj_doesnotexist' }, body: { query: 'select 1' } }), (e) => e.status === 404);

  const stranger = createCapyDB({ apiKey: 'capy_live_' + '0'.repeat(32), baseUrl });
  await assert.rejects(stranger.listProjects(), (e) => e instanceof CapyDBError && e.status === 401);
});
