// The dashboard's end-to-end test in real Chromium against a real `capydb
// server` (started by e2e/dashboard_test.go, which passes CAPYDB_URL and
// CAPYDB_KEY): sign in with the API key → create a project through the form
// → watch it become ready → reveal the pooled URL and connect to it with
// node-postgres → a clone preview's row count in the SQL editor → backup, API key pages → rotate credentials and
// check the old URL is refused → XSS names render as text → delete. axe-core
// runs on every page (0 serious/critical), screenshots go to CAPYDB_E2E_OUT.
// The last stdout line is a JSON summary the Go test checks.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import pg from 'pg';
import { axe, launch, outDir } from './browser.mjs';

const base = process.env.CAPYDB_URL;
const key = process.env.CAPYDB_KEY;
if (!base || !key) throw new Error('CAPYDB_URL and CAPYDB_KEY are required');
const out = outDir();
const summary = { pages: {}, steps: [] };
const step = (s) => {
  summary.steps.push(s);
  console.error(`step: ${s}`);
};

const { context, page, problems } = await launch();
page.setDefaultTimeout(30_000);

async function check(name) {
  await page.waitForLoadState('networkidle').catch(() => {});
  const v = await axe(page);
  summary.pages[name] = { serious_or_critical: v.length, violations: v };
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  assert.equal(v.length, 0, `axe on ${name}: ${JSON.stringify(v, null, 1)}`);
  assert.deepEqual(problems, [], `browser problems on ${name}`);
}

// The server's URLs say sslmode=require; node-postgres treats that as
// verify-full, so connect as a user would after downloading the CA from the
// overview's link: sslmode=verify-full with sslrootcert.
let caPath;
async function connect(url) {
  if (!caPath) {
    const res = await fetch(`${base}/v1/ca.pem`);
    assert.equal(res.status, 200, 'GET /v1/ca.pem');
    caPath = join(out, 'ca.pem');
    writeFileSync(caPath, await res.text());
  }
  const verifying = url.replace('sslmode=require', `sslmode=verify-full&sslrootcert=${encodeURIComponent(caPath)}`);
  const c = new pg.Client({ connectionString: verifying, connectionTimeoutMillis: 10_000 });
  try {
    await c.connect();
    const r = await c.query('select current_user as u, 41 + 1 as answer');
    return { ok: true, user: r.rows[0].u, answer: r.rows[0].answer };
  } catch (e) {
    return { ok: false, code: e.code, message: e.message };
  } finally {
    await c.end().catch(() => {});
  }
}

async function waitBadge(scope, text, timeout = 180_000) {
  await scope.locator('.badge', { hasText: new RegExp(`^${text}$`) }).first().waitFor({ timeout });
}

try {
  // Sign in.
  await page.goto(`${base}/`);
  assert.equal(new URL(page.url()).pathname, '/dashboard/', 'the root redirects to the dashboard');
  await page.getByLabel('API key').waitFor();
  await check('sign-in');
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
  step('signed in');
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  assert.ok(!stored.includes(key) && !stored.includes('capydb_session'), 'no key or session token is readable by script');
  const cookies = await context.cookies(base);
  const session = cookies.find((c) => c.name === 'capydb_session');
  assert.ok(session && session.httpOnly && session.sameSite === 'Strict' && session.expires > Date.now() / 1000, `session cookie flags: ${JSON.stringify(session)}`);
  summary.cookie = { httpOnly: session.httpOnly, sameSite: session.sameSite };
  await check('projects-empty');

  // Create a project through the form and watch it become ready.
  await page.getByRole('link', { name: 'New project' }).click();
  await page.getByLabel('Name').fill('e2e-shop');
  await check('new-project');
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.getByRole('heading', { name: 'e2e-shop' }).waitFor();
  const projectId = new URL(page.url()).pathname.split('/')[3];
  summary.project_id = projectId;
  await waitBadge(page.locator('.row.between'), 'ready');
  step('project ready');

  // Reveal the pooled URL and connect to it.
  const pooled = page.getByLabel('Pooled URL');
  await pooled.waitFor();
  const masked = await pooled.textContent();
  assert.ok(masked.includes('••••'), `the password is hidden before reveal: ${masked}`);
  await check('project-overview');
  await page.getByRole('button', { name: 'Reveal Pooled password' }).click();
  const oldURL = await pooled.textContent();
  assert.ok(oldURL.startsWith('postgres') && !oldURL.includes('•'), 'the revealed URL is a postgres URL');
  const first = await connect(oldURL);
  assert.equal(first.ok, true, `connect to the revealed pooled URL: ${JSON.stringify(first)}`);
  assert.equal(first.answer, 42);
  summary.connected_before_rotation = first;
  step('connected to pooled URL');

  // A table with three rows in the project, for the clone preview to copy.
  {
    const c = new pg.Client({ connectionString: oldURL.replace('sslmode=require', `sslmode=verify-full&sslrootcert=${encodeURIComponent(caPath)}`) });
    await c.connect();
    await c.query(`create table items (id int primary key); insert into items values (1), (2), (3)`);
    await c.end();
  }

  // Previews: create a clone and see it ready.
  await page.getByRole('link', { name: 'Previews' }).click();
  await page.getByRole('heading', { name: 'Previews' }).waitFor();
  await page.getByLabel('Name (optional)').fill('e2e-preview');
  await page.getByRole('button', { name: 'Create preview' }).click();
  const card = page.locator('li.card', { hasText: 'e2e-preview' });
  await waitBadge(card, 'ready');
  await check('previews');
  step('preview ready');
  // The SQL editor against the clone preview: its row count.
  await page.getByRole('link', { name: 'SQL', exact: true }).click();
  await page.getByLabel('Database', { exact: true }).selectOption({ label: 'preview e2e-preview' });
  await page.getByLabel('SQL', { exact: true }).fill('select count(*) as n from items');
  await page.getByRole('button', { name: 'Run' }).click();
  const n = page.getByRole('region', { name: 'Query result' }).locator('tbody td').nth(1);
  await n.waitFor();
  assert.equal(await n.textContent(), '3', 'the clone preview has the project\'s three rows');
  summary.preview_row_count = Number(await n.textContent());
  await check('sql-preview');
  step('preview row count in the SQL editor');
  // The project goes back to empty: the export below is imported into it again.
  {
    const c = new pg.Client({ connectionString: oldURL.replace('sslmode=require', `sslmode=verify-full&sslrootcert=${encodeURIComponent(caPath)}`) });
    await c.connect();
    await c.query('drop table items');
    await c.end();
  }

  // Backups: back up now and see it complete.
  await page.getByRole('link', { name: 'Backups' }).click();
  await page.getByRole('button', { name: 'Back up now' }).click();
  await waitBadge(page.locator('tbody'), 'completed');
  step('backup completed');
  // The daily schedule, then restore the backup into a new preview.
  await page.getByLabel('Hour').fill('4');
  await page.getByRole('button', { name: 'Save schedule' }).click();
  await page.getByText('Saved.').waitFor();
  await page.getByRole('button', { name: /^Restore to new preview/ }).first().click();
  await waitBadge(page.locator('tbody .job'), 'completed');
  // …and into the existing preview (its select lists the ready previews).
  const firstRestore = await page.locator('tbody .job a').first().textContent();
  await page.getByRole('button', { name: /^Restore into preview/ }).first().click();
  await page.waitForFunction((before) => {
    const a = document.querySelector('tbody .job a');
    return a && a.textContent !== before;
  }, firstRestore);
  await waitBadge(page.locator('tbody .job'), 'completed');
  step('restored into an existing preview');
  await page.getByLabel('Restore point label').fill('before-launch');
  await page.getByRole('button', { name: 'Add restore point' }).click();
  await page.locator('ul.plain li', { hasText: 'before-launch' }).waitFor();
  await check('backups');
  step('restored into a new preview');

  // Exports: export now, then download through the signed URL.
  await page.getByRole('link', { name: 'Exports' }).click();
  await page.getByRole('button', { name: 'Export now' }).click();
  await waitBadge(page.locator('tbody'), 'completed');
  await check('exports');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: /^Download/ }).first().click()]);
  const dumpPath = join(out, 'export.dump');
  await download.saveAs(dumpPath);
  const dump = readFileSync(dumpPath);
  assert.equal(dump.subarray(0, 5).toString(), 'PGDMP', 'the export downloads as a pg_dump archive');
  summary.export_bytes = dump.length;
  step('export downloaded');

  await page.getByRole('link', { name: 'Jobs' }).click();
  await page.locator('tbody tr').first().waitFor();
  await check('jobs');
  await page.locator('tbody a').first().click();
  await page.getByRole('heading', { name: /^Job job_/ }).waitFor();
  await check('job');

  // Rotate credentials: confirm, watch the job, old URL refused, new one works.
  await page.goto(`${base}/dashboard/projects/${projectId}`);
  await page.getByRole('button', { name: 'Rotate credentials' }).click();
  await page.getByRole('dialog').waitFor();
  await check('rotate-confirm');
  await page.getByRole('dialog').getByRole('button', { name: 'Rotate' }).click();
  await waitBadge(page.locator('.rotate .job'), 'completed');
  step('rotation completed');
  const refused = await connect(oldURL);
  assert.equal(refused.ok, false, 'the old URL is refused after rotation');
  // Postgres says 28P01; pgBouncer (the pooled port) 08P01 "SASL authentication failed".
  assert.ok(['28P01', '08P01'].includes(refused.code) && /authentication failed/.test(refused.message), `old password: ${JSON.stringify(refused)}`);
  summary.old_url_after_rotation = refused;
  await page.getByRole('button', { name: 'Reveal Pooled password' }).click();
  await page.waitForFunction((old) => {
    const el = document.querySelector('[aria-label="Pooled URL"]');
    return el && el.textContent !== old && !el.textContent.includes('•');
  }, oldURL);
  const newURL = await pooled.textContent();
  const second = await connect(newURL);
  assert.equal(second.ok, true, `the new URL connects: ${JSON.stringify(second)}`);
  summary.connected_after_rotation = second.ok;

  // Import preflight against a reachable source (the project's own new URL;
  // the server runs with --imports-allow-private): its findings are shown.
  await page.getByRole('link', { name: 'Import' }).click();
  await page.getByLabel('Source database URL').fill(newURL);
  await page.getByRole('button', { name: 'Check source' }).click();
  const reach = page.locator('tr', { hasText: 'source_reachable' });
  await reach.waitFor();
  assert.equal((await reach.locator('.badge').textContent()).trim(), 'pass');
  const password = decodeURIComponent(new URL(newURL).password);
  assert.ok(password.length > 8 && !(await page.evaluate(() => document.body.innerText)).includes(password), 'the source password is not shown');
  await check('import-preflight');
  step('import preflight');
  // Upload the export downloaded above and import it (export → import round trip).
  await page.getByLabel('Dump file').setInputFiles(dumpPath);
  await page.getByRole('button', { name: 'Upload and import' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Upload and import' }).click();
  await waitBadge(page.locator('.job', { hasText: 'project.import' }), 'completed');
  step('uploaded dump imported');

  // API keys: the plaintext is shown once, then revoke.
  await page.getByRole('link', { name: 'API keys' }).click();
  await page.getByRole('heading', { name: 'API keys' }).waitFor();
  await page.getByLabel('Name').fill('e2e-key');
  await page.getByRole('button', { name: 'Create key' }).click();
  const plain = await page.getByLabel('New API key').textContent();
  assert.match(plain, /^capy_live_/);
  await check('api-keys');
  await page.getByRole('button', { name: 'Revoke e2e-key' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
  await page.locator('tr', { hasText: 'e2e-key' }).getByText('revoked').waitFor();
  const revoked = await fetch(`${base}/v1/projects`, { headers: { Authorization: `Bearer ${plain}` } });
  assert.equal(revoked.status, 401, 'the revoked key is refused');
  step('api key created and revoked');

  // Webhooks: an endpoint on a loopback receiver (the server runs with
  // --webhooks-allow-insecure), its secret once, a test event delivered.
  const received = [];
  const receiver = createServer((req, res) => {
    let b = '';
    req.on('data', (c) => (b += c));
    req.on('end', () => {
      received.push({ body: b, signature: req.headers['webhook-signature'] ?? req.headers['x-capydb-signature'] ?? '' });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const hookURL = `http://127.0.0.1:${receiver.address().port}/hook`;
  await page.getByRole('link', { name: 'Webhooks' }).click();
  await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
  await page.getByLabel('URL').fill(hookURL);
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  assert.match(await page.getByLabel('Signing secret').textContent(), /^whsec_/);
  await page.getByRole('button', { name: 'Send test event' }).click();
  await waitBadge(page.locator('li.card tbody'), 'delivered', 60_000);
  assert.ok(received.some((r) => r.body.includes('webhook.test')), `the receiver got ${JSON.stringify(received)}`);
  await check('webhooks');
  receiver.close();
  summary.webhook_deliveries = received.length;
  step('webhook delivered');

  // Organization settings: rename.
  await page.getByRole('link', { name: 'Organization' }).click();
  await page.getByLabel('Name').fill('e2e organization');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  await check('organization');

  // The project's audit log shows the rotation.
  await page.goto(`${base}/dashboard/projects/${projectId}/audit`);
  await page.getByRole('heading', { name: 'Audit log' }).waitFor();
  await page.locator('tbody tr td', { hasText: /rotat/ }).first().waitFor();
  await check('audit');
  step('audit log');

  // XSS: a project named like markup renders as text; any dialog fails.
  const evil = '<img src=x onerror=alert(1)>';
  await page.goto(`${base}/dashboard/projects/new`);
  await page.getByLabel('Name').fill(evil);
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.getByRole('heading', { name: evil }).waitFor();
  await page.goto(`${base}/dashboard/`);
  const link = page.getByRole('link', { name: evil, exact: true });
  await link.waitFor();
  assert.equal(await link.textContent(), evil);
  assert.equal(await page.locator('main img').count(), 0, 'no <img> element was created from the name');
  await check('projects-xss');
  summary.xss_rendered_as_text = true;
  step('xss inert');

  // 390 px wide: the projects page does not scroll sideways.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(200);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: join(out, 'projects-390px.png'), fullPage: true });
  assert.ok(overflow <= 0, `the projects page scrolls sideways at 390 px by ${overflow}px`);
  await page.setViewportSize({ width: 1280, height: 900 });

  // Delete the first project with the confirmation.
  await page.goto(`${base}/dashboard/projects/${projectId}/settings`);
  await page.getByRole('button', { name: 'Delete project' }).click();
  await page.getByRole('dialog').getByLabel(/Type the project name/).fill('e2e-shop');
  await check('delete-confirm');
  await page.getByRole('dialog').getByRole('button', { name: 'Delete project' }).click();
  await waitBadge(page.locator('.danger-zone .job'), 'completed');
  step('project deleted');

  // Sign out: the cookie no longer authenticates.
  const cookie = (await context.cookies(base)).find((c) => c.name === 'capydb_session');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API key').waitFor();
  const after = await fetch(`${base}/v1/projects`, { headers: { Cookie: `capydb_session=${cookie.value}` } });
  assert.equal(after.status, 401, 'the signed-out session cookie is refused');
  summary.signed_out_cookie_status = after.status;
  step('signed out');
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
