// Drives the loadplan web UI in a real headless Chromium (playwright-core, no bundled
// browser): start a run against the demo target, watch the counts grow, raise the users,
// stop, download the CSV. Run by tests/web_e2e.rs:
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
  await page.waitForSelector('#stats-table tr[data-name="GET /health"]', { timeout: 30000 });
  await page.screenshot({ path: join(shots, '02-running.png'), fullPage: true });

  step('raise users to 5');
  await page.fill('#c-users', '5');
  await page.fill('#c-spawn', '50');
  await page.click('#btn-users');
  await waitFor('5 users', async () => (await num(page, '#users-live')) === 5);

  step('charts');
  await page.click('#tab-charts');
  await waitFor('a few seconds of history', async () => page.evaluate(() => {
    const c = document.getElementById('chart-users');
    return c.width > 0;
  }));
  await page.waitForTimeout(2500); // let a few ticks draw (for the screenshot only)
  await page.screenshot({ path: join(shots, '03-charts.png'), fullPage: true });

  step('stop');
  await page.click('#btn-stop');
  await waitFor('status stopped', async () => (await page.textContent('#status')) === 'stopped', 60000);
  await page.waitForSelector('#verdict', { state: 'visible' });
  await page.click('#tab-stats');
  await page.screenshot({ path: join(shots, '04-stopped.png'), fullPage: true });

  step('download stats.csv');
  await page.click('#tab-downloads');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#dl-csv')]);
  const csvPath = join(shots, 'stats.csv');
  await download.saveAs(csvPath);
  const csv = readFileSync(csvPath, 'utf8');
  if (!csv.startsWith('Type,Name,Request Count') || !csv.includes('Aggregated')) {
    throw new Error('unexpected CSV:\n' + csv);
  }

  step('phone layout');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('#tab-stats');
  await page.screenshot({ path: join(shots, '05-phone.png'), fullPage: true });
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
