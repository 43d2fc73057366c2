// Drives the loadplan web UI in a real headless Chromium (playwright-core, no bundled
// browser): start a run against the demo target, watch the counts grow (and the Users box),
// raise the users, sort the table, download both CSVs, start a second run that fails and read
// why, check the page fits a phone. Run by tests/web_e2e.rs:
//   node tests/e2e/ui.mjs URL SCREENSHOT_DIR
// Chromium: $LOADPLAN_CHROMIUM or /usr/bin/chromium (Debian's `chromium` package).
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [url, shots] = process.argv.slice(2);
if (!url || !shots) {
  console.error('usage: node ui.mjs URL SCREENSHOT_DIR');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const executablePath = process.env.LOADPLAN_CHROMIUM || '/usr/bin/chromium';
const userDataDir = join(shots, '.profile');

const step = (m) => console.log('e2e: ' + m);
const num = async (page, sel) => Number((await page.textContent(sel)).trim());
const usersBox = async (page) => page.inputValue('#c-users');
// The row names of a statistics table, in the order shown (the total row left out).
const rowNames = async (page) => page.$$eval('#stats-table tbody tr:not(.total) td:nth-child(2)', (tds) => tds.map((t) => t.textContent));
// A page wider than the window scrolls sideways: the phone layout must not.
const overflow = async (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

async function waitFor(what, fn, timeout = 30000) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  acceptDownloads: true,
  viewport: { width: 1280, height: 860 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
const page = context.pages()[0] || await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
try {
  step('open ' + url);
  await page.goto(url);
  await page.waitForSelector('#start-form', { state: 'visible' });
  await page.screenshot({ path: join(shots, '01-start.png'), fullPage: true });

  step('start 2 users');
  await page.fill('#f-users', '2');
  await page.fill('#f-spawn', '10');
  await page.fill('#f-duration', '5m');
  await page.click('#btn-start');
  await waitFor('status running', async () => (await page.textContent('#status')) === 'running');
  const first = await waitFor('requests', async () => { const n = await num(page, '#requests-total'); return n > 0 && n; });
  await waitFor('requests to grow', async () => (await num(page, '#requests-total')) > first);
  await waitFor('2 users', async () => (await num(page, '#users-live')) === 2);
  // The Users box shows the live count (it showed the 0 of the first tick).
  await waitFor('the Users box to show 2', async () => (await usersBox(page)) === '2', 10000)
    .catch(async (e) => { throw new Error(e.message + ' (Users box: ' + await usersBox(page) + ')'); });
  await page.waitForSelector('#stats-table tr[data-name="GET /health"]', { timeout: 30000 });
  await page.screenshot({ path: join(shots, '02-running.png'), fullPage: true });

  step('raise users to 5');
  await page.fill('#c-users', '5');
  await page.fill('#c-spawn', '50');
  await page.click('#btn-users');
  await waitFor('5 users', async () => (await num(page, '#users-live')) === 5);
  if ((await usersBox(page)) !== '5') throw new Error('Users box shows ' + await usersBox(page) + ' with 5 users');

  step('charts');
  await page.click('#tab-charts');
  await waitFor('a few seconds of history', async () => page.evaluate(() => {
    const c = document.getElementById('chart-users');
    return c.width > 0;
  }));
  await page.waitForTimeout(2500); // let a few ticks draw (for the screenshot only)
  await page.screenshot({ path: join(shots, '03-charts.png'), fullPage: true });
  // One step's own percentiles over time.
  await page.selectOption('#chart-step', 'GET /health');
  const stepTip = async () => {
    const b = await page.locator('#chart-latency').boundingBox();
    await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2);
    return page.getAttribute('#chart-latency', 'title');
  };
  await waitFor('a p50/p95/p99 tooltip for GET /health', async () => /p50: .*\np95: .*\np99: /.test((await stepTip()) || ''), 10000);
  if (!(await page.textContent('#pane-charts .chart-of')).includes('GET /health')) throw new Error('the chart does not name its step');
  await page.screenshot({ path: join(shots, '03b-step-chart.png'), fullPage: true });
  const perStep = await page.evaluate(async () => {
    const r = await fetch('/api/stats');
    const s = await r.json();
    return s.history.some((p) => (p.steps || []).some((x) => x.step === 'GET /health' && x.p95_ms !== null));
  });
  if (!perStep) throw new Error('no per-step point for GET /health in /api/stats history');
  await page.selectOption('#chart-step', '');
  // A tooltip with the values under the pointer (the newest point, at the right edge).
  const box = await page.locator('#chart-users').boundingBox();
  await page.mouse.move(box.x + box.width - 12, box.y + box.height / 2);
  const tip = await page.getAttribute('#chart-users', 'title');
  if (!/users: 5$/.test(tip || '')) throw new Error('users chart tooltip: ' + JSON.stringify(tip));

  step('stop');
  await page.click('#btn-stop');
  await waitFor('status stopped', async () => (await page.textContent('#status')) === 'stopped', 60000);
  await page.waitForSelector('#verdict', { state: 'visible' });
  await page.click('#tab-stats');
  await page.screenshot({ path: join(shots, '04-stopped.png'), fullPage: true });

  step('checks tab');
  await page.click('#tab-checks');
  await page.waitForSelector('#checks-table tr[data-name="GET /health"]', { timeout: 10000 });
  const healthChecks = await page.$$eval('#checks-table tr[data-name="GET /health"] td', (tds) => tds.map((t) => t.textContent));
  if (!(Number(healthChecks[2]) > 0)) throw new Error('GET /health checks: ' + JSON.stringify(healthChecks));
  await page.screenshot({ path: join(shots, '04b-checks.png'), fullPage: true });
  await page.click('#tab-stats');

  step('sort the statistics by name, then by # reqs');
  const names = await rowNames(page);
  if (names.length < 2) throw new Error('too few rows to sort: ' + names);
  const byName = await page.evaluate((n) => [...n].sort((a, b) => a.localeCompare(b)), names);
  await page.click('#stats-table thead th:nth-child(2) button');
  await waitFor('rows sorted by name', async () => JSON.stringify(await rowNames(page)) === JSON.stringify(byName), 10000)
    .catch(async (e) => { throw new Error(e.message + ': ' + JSON.stringify(await rowNames(page)) + ' want ' + JSON.stringify(byName)); });
  await page.click('#stats-table thead th:nth-child(2) button');
  await waitFor('rows sorted by name, descending', async () => JSON.stringify(await rowNames(page)) === JSON.stringify([...byName].reverse()), 10000);
  await page.click('#stats-table thead th:nth-child(3) button');
  const counts = async () => page.$$eval('#stats-table tbody tr:not(.total) td:nth-child(3)', (tds) => tds.map((t) => Number(t.textContent)));
  await waitFor('rows sorted by # reqs, most first', async () => {
    const c = await counts();
    return c.every((v, i) => i === 0 || c[i - 1] >= v) && c[0] > c[c.length - 1];
  }, 10000).catch(async (e) => { throw new Error(e.message + ': ' + JSON.stringify(await counts())); });
  const sortState = await page.getAttribute('#stats-table thead th:nth-child(3)', 'aria-sort');
  if (sortState !== 'descending') throw new Error('aria-sort is ' + sortState);
  await page.screenshot({ path: join(shots, '06-sorted.png'), fullPage: true });

  step('download stats.csv');
  await page.click('#tab-downloads');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-csv')]);
  const csvPath = join(shots, 'stats.csv');
  await download.saveAs(csvPath);
  const csv = readFileSync(csvPath, 'utf8');
  if (!csv.startsWith('Type,Name,Request Count') || !csv.includes('Aggregated')) {
    throw new Error('unexpected CSV:\n' + csv);
  }

  step('download stats_history.csv');
  const [hist] = await Promise.all([page.waitForEvent('download'), page.click('#dl-history')]);
  const histPath = join(shots, 'stats_history.csv');
  await hist.saveAs(histPath);
  const histCsv = readFileSync(histPath, 'utf8');
  if (!histCsv.startsWith('Timestamp,User Count,Type,Name') || !histCsv.includes('GET,/health') || !histCsv.includes('Aggregated')) {
    throw new Error('unexpected history CSV:\n' + histCsv.slice(0, 2000));
  }

  step('a second run, against a closed port: its own users, and why it failed');
  await page.click('#tab-stats');
  await page.waitForSelector('#start-form', { state: 'visible' });
  await page.fill('#f-users', '3');
  await page.fill('#f-spawn', '30');
  await page.fill('#f-host', 'http://127.0.0.1:1');
  await page.fill('#f-duration', '4s');
  await page.click('#btn-start');
  await waitFor('status running', async () => (await page.textContent('#status')) === 'running');
  await waitFor('3 users', async () => (await num(page, '#users-live')) === 3);
  // The previous run ended at 5 users; this one has 3, and so must the Users box.
  await waitFor('the Users box to show 3', async () => (await usersBox(page)) === '3', 10000)
    .catch(async (e) => { throw new Error(e.message + ' (Users box: ' + await usersBox(page) + ')'); });
  await page.screenshot({ path: join(shots, '07-second-run.png'), fullPage: true });
  await waitFor('the run to end', async () => (await page.textContent('#status')) === 'stopped', 60000);
  await page.waitForSelector('#verdict-why', { state: 'visible', timeout: 30000 });
  const badge = (await page.textContent('#verdict-badge')).trim();
  if (badge !== 'failed') throw new Error('verdict badge: ' + badge);
  const reasons = await page.$$eval('#verdict-reasons li', (lis) => lis.map((l) => l.textContent));
  if (!reasons.some((r) => /requests failed|thresholds failed|no request completed/.test(r))) {
    throw new Error('no reason for the failed verdict: ' + JSON.stringify(reasons));
  }
  step('reasons: ' + reasons.join('; '));
  await page.screenshot({ path: join(shots, '08-failed-why.png'), fullPage: true });

  step('phone layout');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('#tab-stats');
  await page.screenshot({ path: join(shots, '05-phone.png'), fullPage: true });
  const wide = await overflow(page);
  if (wide > 0) throw new Error('the page is ' + wide + ' px wider than a 390 px phone');
  if (errors.length) throw new Error('errors in the page:\n' + errors.join('\n'));
  step('ok');
} catch (e) {
  failed = true;
  console.error('e2e FAILED: ' + (e && e.stack || e));
  await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true }).catch(() => {});
} finally {
  await context.close();
}
process.exit(failed ? 1 : 0);
