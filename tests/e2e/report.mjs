// Opens a loadplan HTML report (a file) in headless Chromium at phone and desktop width,
// saves screenshots and fails when the page scrolls sideways at 390 px or a request
// leaves the file. Run by tests/report_steps.rs:
//   node tests/e2e/report.mjs REPORT.html SCREENSHOT_DIR [NAME [baseline]]
// NAME prefixes the screenshots (default `report`); `baseline` also requires the comparison
// with a baseline: its table and the baseline's dashed series in the per-step charts.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [file, shots, name = 'report', mode] = process.argv.slice(2);
if (!file || !shots) {
  console.error('usage: node report.mjs REPORT.html SCREENSHOT_DIR');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.LOADPLAN_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  const fetched = [];
  page.on('request', (r) => { if (!r.url().startsWith('file:')) fetched.push(r.url()); });
  await page.goto(pathToFileURL(resolve(file)).href);
  await page.screenshot({ path: join(shots, name + '-phone.png'), fullPage: true });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  console.log('report: scrollWidth - innerWidth at 390 px = ' + wide);
  if (wide > 0) throw new Error('the report is ' + wide + ' px wider than a 390 px phone');
  const charts = await page.$$eval('.step-chart svg', (s) => s.filter((x) => x.getBoundingClientRect().width > 0).length);
  console.log('report: visible per-step charts = ' + charts);
  if (charts === 0) throw new Error('no per-step chart is visible');
  if (mode === 'baseline') {
    const dashed = await page.$$eval('.step-chart svg .baseline', (s) => s.length);
    const judged = await page.$$eval('table.compare td[data-judged]', (s) => s.length);
    console.log('report: baseline series in step charts = ' + dashed + ', judged changes = ' + judged);
    if (dashed === 0) throw new Error('no baseline series in the per-step charts');
    if (judged === 0) throw new Error('no comparison table');
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: join(shots, name + '-desktop.png'), fullPage: true });
  if (fetched.length) throw new Error('the report fetched ' + fetched.join(', '));
} catch (e) {
  failed = true;
  console.error('report e2e FAILED: ' + (e && e.stack || e));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
