// The dashboard's Studio, observability and settings pages in real Chromium
// against a real `capydb server` (started by e2e/dashboard_test.go with
// --sampler-interval 2s and --log-search): SQL editor (advanced mode DDL,
// safe-mode reads, a "<script>" cell as text, the truncated notice, errors
// as text, history, snippets) → table browser paging → schema, lint and a
// types download → database settings whose effect is read back with SHOW →
// pooler → read-only on/off observed as SQLSTATE 25006 → allow-list → SSL
// refusal → an extension enabled → metrics charts (uPlot) with sampler
// points, a storage alert acknowledged → logs tail and search. Every page
// gets axe-core (0 serious/critical) and a screenshot; each page's load time
// (navigation → content) is measured. Last stdout line: a JSON summary.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { axe, launch, outDir } from './browser.mjs';

const base = process.env.CAPYDB_URL;
const key = process.env.CAPYDB_KEY;
if (!base || !key) throw new Error('CAPYDB_URL and CAPYDB_KEY are required');
const out = outDir();
const summary = { pages: {}, steps: [], load_ms: {} };
const step = (s) => {
  summary.steps.push(s);
  console.error(`step: ${s}`);
};
const { context, page, problems } = await launch();
page.setDefaultTimeout(30_000);

async function api(method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => ({}));
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function check(name) {
  await page.waitForLoadState('networkidle').catch(() => {});
  const v = await axe(page);
  summary.pages[name] = { serious_or_critical: v.length, violations: v };
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  assert.equal(v.length, 0, `axe on ${name}: ${JSON.stringify(v, null, 1)}`);
  assert.deepEqual(problems, [], `browser problems on ${name}`);
}

// open loads a page from scratch (a full navigation: app, session, page data)
// and records the time until `ready` is visible.
async function open(name, path, ready) {
  const t0 = Date.now();
  await page.goto(`${base}/dashboard/projects/${summary.project_id}${path}`);
  await ready().waitFor();
  summary.load_ms[name] = Date.now() - t0;
}

let caPath;
async function client(url) {
  if (!caPath) {
    caPath = join(out, 'ca.pem');
    writeFileSync(caPath, await (await fetch(`${base}/v1/ca.pem`)).text());
  }
  const c = new pg.Client({ connectionString: url.replace('sslmode=require', `sslmode=verify-full&sslrootcert=${encodeURIComponent(caPath)}`) });
  await c.connect();
  return c;
}
async function sql(url, text) {
  const c = await client(url);
  try {
    return { ok: true, rows: (await c.query(text)).rows };
  } catch (e) {
    return { ok: false, code: e.code, message: e.message };
  } finally {
    await c.end().catch(() => {});
  }
}

const waitBadge = (scope, text, timeout = 120_000) =>
  scope.locator('.badge', { hasText: new RegExp(`^${text}$`) }).first().waitFor({ timeout });
const editor = () => page.getByLabel('SQL', { exact: true });
async function runSQL(text, mode = 'safe') {
  await page.getByLabel(mode === 'safe' ? 'Safe (read-only)' : 'Advanced (writes and DDL)').check();
  await editor().fill(text);
  await page.getByRole('button', { name: 'Run' }).click();
  await page.locator('[aria-label="Result"], p.error[role="alert"]').first().waitFor();
}

try {
  // Sign in, and a project made through the API (the first test covers the form).
  await page.goto(`${base}/dashboard/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  const created = await api('POST', '/v1/projects', { name: 'studio-e2e' });
  const projectId = created.project.id;
  summary.project_id = projectId;
  for (let i = 0; i < 240; i++) {
    const p = (await api('GET', `/v1/projects/${projectId}`)).project;
    if (p.state === 'ready') break;
    assert.notEqual(p.state, 'failed');
    await new Promise((r) => setTimeout(r, 500));
  }
  const conns = (await api('GET', `/v1/projects/${projectId}/connections`)).connections;
  const direct = conns.direct_url ?? conns.direct?.url ?? conns.urls?.direct;
  assert.ok(direct?.startsWith('postgres'), `a direct URL: ${JSON.stringify(Object.keys(conns))}`);
  step('project ready');

  // SQL editor: DDL in advanced mode.
  await open('sql', '/sql', () => editor());
  await runSQL(
    `create table notes (id int primary key, body text);
insert into notes select g, 'note ' || g from generate_series(1, 120) g;
insert into notes values (1000, '<script>alert(1)</script>');
create table nopk (x int)`,
    'advanced',
  );
  await page.getByRole('status').filter({ hasText: 'row(s) affected' }).waitFor();
  // Safe mode reads: a cell holding markup is text.
  await runSQL(`select id, body from notes where id = 1000`);
  const cell = page.getByRole('region', { name: 'Query result' }).locator('tbody td', { hasText: '<script>' });
  assert.equal(await cell.textContent(), '<script>alert(1)</script>');
  assert.equal(await page.locator('main script').count(), 0, 'no script element from a result');
  summary.sql_cell = await cell.textContent();
  // More rows than max rows: the truncated notice.
  await runSQL(`select g from generate_series(1, 300) g`);
  await page.getByRole('note').filter({ hasText: 'Truncated' }).waitFor();
  assert.equal(await page.getByRole('region', { name: 'Query result' }).locator('tbody tr').count(), 200);
  // Errors are shown as text (and a write in safe mode is refused).
  await runSQL(`select '<img src=x onerror=alert(2)>'::int`);
  const err = page.locator('p.error[role="alert"]');
  assert.match(await err.textContent(), /invalid input syntax for type integer: "<img src=x onerror=alert\(2\)>"/);
  assert.equal(await page.locator('main img').count(), 0);
  await runSQL(`select * from missing_table_e2e`);
  assert.match(await err.textContent(), /relation "missing_table_e2e" does not exist.*42P01/);
  await runSQL(`insert into notes values (2000, 'x')`);
  assert.match(await err.textContent(), /25006/);
  summary.safe_mode_write_error = await err.textContent();
  // History lists what ran; a snippet saves and reopens a query.
  await page.getByRole('list', { name: 'Query history' }).getByText('generate_series(1, 300)').first().waitFor();
  await editor().fill('select count(*) as n from notes');
  await page.getByLabel('Snippet name').fill('count notes');
  await page.getByRole('button', { name: 'Save query as snippet' }).click();
  await page.getByRole('button', { name: 'count notes', exact: true }).waitFor();
  await editor().fill('select 1');
  await page.getByRole('button', { name: 'count notes', exact: true }).click();
  assert.equal(await editor().inputValue(), 'select count(*) as n from notes');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.getByRole('region', { name: 'Query result' }).locator('tbody td', { hasText: /^121$/ }).waitFor();
  await check('sql');
  step('sql editor');

  // Table browser: pick notes, page forward.
  await open('tables', '/tables', () => page.getByRole('button', { name: /^public\.notes/ }));
  await page.getByRole('button', { name: /^public\.notes/ }).click();
  const rowsGrid = page.getByRole('region', { name: 'Rows of public.notes' }).last();
  await rowsGrid.locator('td', { hasText: /^note 1$/ }).waitFor();
  await page.getByRole('button', { name: 'Next page' }).click();
  await page.getByRole('status').filter({ hasText: 'Rows 51–100' }).waitFor();
  await rowsGrid.locator('td', { hasText: /^note 51$/ }).waitFor();
  assert.equal(await rowsGrid.locator('td', { hasText: /^note 1$/ }).count(), 0);
  await check('tables');
  step('tables paged');

  // Schema: the document, lint (a table without a primary key), types download.
  await open('schema', '/schema', () => page.locator('summary', { hasText: 'public.notes' }));
  await page.locator('tr', { hasText: 'missing_primary_key' }).filter({ hasText: 'nopk' }).waitFor();
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download types' }).click()]);
  const typesPath = join(out, dl.suggestedFilename());
  await dl.saveAs(typesPath);
  const types = readFileSync(typesPath, 'utf8');
  assert.equal(dl.suggestedFilename(), 'database.types.ts');
  assert.match(types, /export interface Notes \{/);
  summary.types_file = dl.suggestedFilename();
  await check('schema');
  step('schema');

  // Database settings: statement_timeout and the connection limit, read back from Postgres.
  await open('database', '/database', () => page.getByLabel('statement_timeout'));
  await page.getByLabel('statement_timeout').fill('1234ms');
  await page.getByLabel('Connection limit').fill('7');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await waitBadge(page.locator('section[aria-labelledby="pg-title"] .job'), 'completed');
  const shown = await sql(direct, 'show statement_timeout');
  assert.equal(shown.rows?.[0]?.statement_timeout, '1234ms', `SHOW statement_timeout: ${JSON.stringify(shown)}`);
  summary.show_statement_timeout = shown.rows[0].statement_timeout;
  const connLimit = await sql(direct, 'select rolconnlimit from pg_roles where rolname = current_user');
  assert.equal(connLimit.rows?.[0]?.rolconnlimit, 7, `the login's connection limit: ${JSON.stringify(connLimit)}`);
  summary.rolconnlimit = 7;
  // Pooler.
  await page.getByLabel('Pool size').fill('1');
  await page.getByRole('button', { name: 'Save pooler' }).click();
  await waitBadge(page.locator('section[aria-labelledby="pooler-title"] .job'), 'completed');
  summary.pool_size = (await api('GET', `/v1/projects/${projectId}/pooler-settings`)).pooler_settings.pool_size;
  assert.equal(summary.pool_size, 1);
  // Read-only on: writes fail with 25006; off again: they work.
  await page.getByRole('button', { name: 'Turn read-only on' }).click();
  await waitBadge(page.locator('section[aria-labelledby="ro-title"] .job'), 'completed');
  await page.getByRole('button', { name: 'Turn read-only off' }).waitFor();
  const refused = await sql(direct, `insert into notes values (3000, 'ro')`);
  assert.equal(refused.code, '25006', `write while read-only: ${JSON.stringify(refused)}`);
  summary.read_only_write = refused.code;
  await page.getByRole('button', { name: 'Turn read-only off' }).click();
  await page.getByRole('button', { name: 'Turn read-only on' }).waitFor({ timeout: 120_000 });
  await waitBadge(page.locator('section[aria-labelledby="ro-title"] .job'), 'completed');
  const allowed = await sql(direct, `insert into notes values (3000, 'rw') returning id`);
  assert.equal(allowed.ok, true, `write after read-only off: ${JSON.stringify(allowed)}`);
  // Allow-list (the Go test reads it back from pg_hba.conf), SSL refusal.
  await page.getByLabel('Allowed IPv4 ranges').fill('10.9.8.0/24');
  await page.getByRole('button', { name: 'Save allow-lists' }).click();
  await waitBadge(page.locator('section[aria-labelledby="net-title"]'), 'applied');
  summary.allowed_cidr = '10.9.8.0/24';
  await page.getByRole('button', { name: 'Allow connections without TLS' }).click();
  await page.locator('section[aria-labelledby="ssl-title"] p.error').filter({ hasText: 'not allowed to configure SSL' }).waitFor();
  // The live jobs table lists the changes.
  const jobsTable = page.getByRole('region', { name: 'Settings jobs' });
  await jobsTable.locator('tr', { hasText: 'project.settings_update' }).first().waitFor();
  await jobsTable.locator('tr', { hasText: 'instance.set_readonly' }).first().waitFor();
  await check('database-settings');
  step('database settings');

  // Extensions: enable hstore, see it in pg_extension.
  await open('extensions', '/extensions', () => page.getByRole('button', { name: 'Enable hstore' }));
  await page.getByRole('button', { name: 'Enable hstore' }).click();
  await page.getByRole('button', { name: 'Disable hstore' }).waitFor({ timeout: 120_000 });
  const ext = await sql(direct, `select extname from pg_extension where extname = 'hstore'`);
  assert.equal(ext.rows?.length, 1, `hstore in pg_extension: ${JSON.stringify(ext)}`);
  await page.getByRole('region', { name: 'Extension jobs' }).locator('tr', { hasText: 'project.extension_enable' }).first().waitFor();
  await check('extensions');
  step('extension enabled');

  // Metrics: charts from the sampler's history; the server runs with a
  // storage limit just above a new project's size, so a storage alert is
  // open to acknowledge.
  await open('metrics', '/metrics', () => page.getByRole('heading', { name: 'Connections', exact: true }));
  await page.waitForFunction(() => {
    const f = document.querySelector('figure[aria-label="Connections"]');
    return f && Number(f.getAttribute('data-points')) >= 3 && f.querySelector('canvas');
  }, null, { timeout: 60_000 });
  summary.chart_points = Number(await page.locator('figure[aria-label="Connections"]').getAttribute('data-points'));
  const ack = page.getByRole('button', { name: 'Acknowledge storage alert' });
  await ack.waitFor({ timeout: 60_000 });
  await ack.click();
  await page.getByRole('region', { name: 'Alerts' }).getByText(/^acknowledged /).waitFor();
  const alerts = (await api('GET', `/v1/projects/${projectId}/alerts`)).alerts;
  assert.ok(alerts.some((a) => a.kind === 'storage' && a.acknowledged_at), `alerts: ${JSON.stringify(alerts)}`);
  summary.alert_acknowledged = true;
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(out, 'dashboard.png') });
  await check('metrics');
  step('metrics');

  // Logs: the failed query's ERROR line in the tail, and found by search.
  await open('logs', '/logs', () => page.getByRole('region', { name: 'Log tail' }));
  await page.getByRole('region', { name: 'Log tail' }).getByText('relation "missing_table_e2e" does not exist').first().waitFor({ timeout: 60_000 });
  await page.getByLabel('Text').fill('missing_table_e2e');
  await page.getByRole('button', { name: 'Search logs' }).click();
  const found = page.getByRole('region', { name: 'Search results' }).locator('tr', { hasText: 'missing_table_e2e' }).first();
  await found.waitFor();
  assert.match(await found.textContent(), /42P01/);
  // The markup of the failed cast is a log line, shown as text.
  await page.getByRole('region', { name: 'Log tail' }).getByText('<img src=x onerror=alert(2)>', { exact: false }).first().waitFor();
  assert.equal(await page.locator('main img').count(), 0);
  await check('logs');
  step('logs');

  assert.deepEqual(problems, []);
  summary.ok = true;
} catch (e) {
  summary.ok = false;
  summary.error = String(e?.stack ?? e);
  summary.problems = problems;
  await page.screenshot({ path: join(out, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await context.close();
}
console.log(JSON.stringify(summary));
process.exit(summary.ok ? 0 : 1);
