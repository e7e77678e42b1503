// Speed of the dashboard, measured in headless Chromium (the same launch as
// the end-to-end test): the initial JavaScript, gzipped, and the projects page
// with 1,000 projects from navigation to interactive (rows painted, then a
// search typed and its result shown). The server (CAPYDB_URL, CAPYDB_KEY: a
// running `capydb server`, e.g. `make run`) serves the app and the session;
// GET /v1/projects is answered inside the browser with 1,000 synthetic
// projects, so no 1,000 databases are provisioned. Prints one JSON line.
//   CAPYDB_URL=http://127.0.0.1:8080 CAPYDB_KEY=capy_live_… node bench/projects-1000.mjs
import { readFileSync, readdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { launch } from '../e2e/browser.mjs';

const base = process.env.CAPYDB_URL;
const key = process.env.CAPYDB_KEY;
const runs = Number(process.env.RUNS ?? 5);
if (!base || !key) throw new Error('CAPYDB_URL and CAPYDB_KEY are required');

// Initial JS: the scripts index.html loads (the whole app is one chunk).
const index = readFileSync('dist/index.html', 'utf8');
const scripts = [...index.matchAll(/src="\/dashboard\/(assets\/[^"]+\.js)"/g)].map((m) => m[1]);
const jsGzip = scripts.reduce((n, s) => n + gzipSync(readFileSync(`dist/${s}`), { level: 9 }).length, 0);
const allJs = readdirSync('dist/assets').filter((f) => f.endsWith('.js'));

const now = new Date().toISOString();
const projects = Array.from({ length: 1000 }, (_, i) => ({
  id: `prj_bench${String(i).padStart(4, '0')}`,
  name: `project ${i} ${i % 7 === 0 ? 'shop' : 'app'}`,
  slug: `project-${i}`,
  organization_id: 'org_bench',
  state: i % 50 === 0 ? 'failed' : 'ready',
  environment: i % 3 ? 'non_production' : 'production',
  region: i % 2 ? 'local' : 'eu-west',
  created_at: now,
  updated_at: now,
  always_on: false,
  database_name: `db_${i}`,
  role_name: `u_${i}`,
  direct_port: 5432,
  pooled_port: 6432,
  max_connections: 20,
  plan: 'vibe',
  statement_timeout: '0',
  idle_transaction_timeout: '0',
  storage_limit_bytes: 1 << 30,
}));
const body = JSON.stringify({ projects });

const { context, page, problems } = await launch();
await page.goto(`${base}/dashboard/`);
await page.getByLabel('API key').fill(key);
await page.getByRole('button', { name: 'Sign in' }).click();
await page.getByRole('heading', { name: 'Projects' }).waitFor();
await page.route('**/v1/projects', (route) =>
  route.request().method() === 'GET' ? route.fulfill({ status: 200, contentType: 'application/json', body }) : route.continue(),
);
const samples = [];
for (let i = 0; i < runs; i++) {
  await page.goto(`${base}/dashboard/?q=&page=1`);
  await page.locator('tbody tr').nth(24).waitFor();
  const rowsPainted = await page.evaluate(() => performance.now());
  const t0 = Date.now();
  await page.getByLabel('Search projects').fill('shop');
  await page.getByText(/^143 of 1000 projects$/).waitFor();
  const searchMs = Date.now() - t0;
  const nav = await page.evaluate(() => performance.getEntriesByType('navigation')[0].startTime);
  samples.push({ interactive_ms: Math.round(rowsPainted - nav + searchMs), rows_painted_ms: Math.round(rowsPainted - nav), search_ms: searchMs });
}
await context.close();
const med = (k) => samples.map((s) => s[k]).sort((a, b) => a - b)[Math.floor(samples.length / 2)];
console.log(
  JSON.stringify({
    initial_js_gzip_bytes: jsGzip,
    js_chunks: allJs.length,
    projects: projects.length,
    runs,
    median_rows_painted_ms: med('rows_painted_ms'),
    median_search_ms: med('search_ms'),
    median_interactive_ms: med('interactive_ms'),
    samples,
    problems,
  }),
);
