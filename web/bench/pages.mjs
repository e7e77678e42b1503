// Load time of the project pages, measured in headless Chromium (the same
// launch as the end-to-end test) against a running server: for each page,
// RUNS full navigations (app, session, page data), from goto to the page's
// content being visible; the median and range. Also the request waterfall:
// the depth of the longest chain of API requests where each was issued by
// the page only after the previous one's response had arrived (1 =
// everything in parallel). Issued, not sent: a request queued behind
// Chromium's six connections per host is not waiting for data.
//   CAPYDB_URL=… CAPYDB_KEY=… PROJECT=prj_… node bench/pages.mjs
// PROJECT should have a table public.notes (the studio e2e script makes one).
// ONLY=<page> measures one page; SHOW=1 prints each load's requests (stderr).
import { launch } from '../e2e/browser.mjs';

const base = process.env.CAPYDB_URL;
const key = process.env.CAPYDB_KEY;
const project = process.env.PROJECT;
const runs = Number(process.env.RUNS ?? 7);
if (!base || !key || !project) throw new Error('CAPYDB_URL, CAPYDB_KEY and PROJECT are required');

const pages = {
  overview: ['', (p) => p.getByLabel('Pooled URL')],
  sql: ['/sql', (p) => p.getByLabel('Query history').locator('li').first()],
  tables: ['/tables', (p) => p.getByRole('button', { name: /^public\.notes/ })],
  schema: ['/schema', (p) => p.locator('summary', { hasText: 'public.notes' })],
  metrics: ['/metrics', (p) => p.locator('figure[aria-label="Connections"] canvas')],
  logs: ['/logs', (p) => p.getByRole('region', { name: 'Log tail' })],
  database: ['/database', (p) => p.getByLabel('statement_timeout')],
  extensions: ['/extensions', (p) => p.getByRole('region', { name: 'Extensions' })],
};

const { context, page } = await launch();
await page.goto(`${base}/dashboard/`);
await page.getByLabel('API key').fill(key);
await page.getByRole('button', { name: 'Sign in' }).click();
await page.getByRole('heading', { name: 'Projects' }).waitFor();

let reqs = [];
page.on('requestfinished', (r) => {
  const u = new URL(r.url());
  if (!u.pathname.startsWith('/v1/') && u.pathname !== '/dashboard/session') return;
  const t = r.timing();
  reqs.push({ path: u.pathname, issued: t.startTime, start: t.startTime + t.requestStart, end: t.startTime + t.responseEnd });
});
// depth: longest chain of requests each starting after the previous ended.
const depth = (rs) => {
  const s = [...rs].sort((a, b) => a.issued - b.issued);
  const d = [];
  s.forEach((r, i) => {
    d[i] = 1 + Math.max(0, ...s.slice(0, i).map((q, j) => (q.end <= r.issued ? d[j] : 0)));
  });
  return Math.max(0, ...d);
};

const result = {}; const only = process.env.ONLY;
for (const [name, [path, ready]] of Object.entries(pages)) {
  if (only && name !== only) continue;
  const times = [];
  let deepest = 0;
  for (let i = 0; i < runs; i++) {
    reqs = [];
    const t0 = Date.now();
    await page.goto(`${base}/dashboard/projects/${project}${path}`);
    await ready(page).waitFor({ timeout: 30_000 });
    times.push(Date.now() - t0);
    await page.waitForLoadState('networkidle').catch(() => {});
    // Only the requests of the first load (before any polling interval).
    if (process.env.SHOW) console.error(JSON.stringify(reqs.filter((r) => r.issued >= t0).map((r) => [r.path.slice(-30), Math.round(r.start), Math.round(r.end)])));
    deepest = Math.max(deepest, depth(reqs.filter((r) => r.start - reqs[0].start < 1500)));
  }
  times.sort((a, b) => a - b);
  result[name] = { median_ms: times[Math.floor(times.length / 2)], min_ms: times[0], max_ms: times[times.length - 1], waterfall_depth: deepest };
}
await context.close();
console.log(JSON.stringify(result));
