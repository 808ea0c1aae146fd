/**
 * The README's screenshots (docs/playground.png, docs/routing.png), taken in headless Chromium from
 * a served build of the playground training the default preset (LoRAMoE on the demo backbone and
 * demo data):
 *
 *   npx vite build --outDir dist-shots && npx vite preview --outDir dist-shots --port 4180 &
 *   npx vite-node tools/docs/screenshots.ts -- http://127.0.0.1:4180
 *
 * playground.png: the page at 1,440 x 900 while the run is paused part-way (its live curves and
 * heatmaps come first); routing.png: the routing panel when the run is done.
 */
import { chromium, type Page } from '@playwright/test';

const base = process.argv.slice(2).find((a) => a.startsWith('http'));
if (!base) {
  console.error('usage: npx vite-node tools/docs/screenshots.ts -- http://127.0.0.1:PORT   (a served build of the playground)');
  process.exit(2);
}

// The default preset (the form's defaults: 80 steps of 16 samples), measured every 10 steps, no checkpoints.
const STEPS = 80;
const SETTINGS = '?routing=10&ckpt=0';

async function waitFor(page: Page, testid: string, attr: string, ok: (v: string | null) => boolean, what: string, ms = 600_000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok(await page.getByTestId(testid).getAttribute(attr).catch(() => null))) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await page.waitForTimeout(250);
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(`${base}/${SETTINGS}`);
  await waitFor(page, 'kernel-check', 'data-passed', (v) => v === 'true', 'the WebGPU adapter');
  // Apply loads the default preset's backbone and data (the demo's).
  await page.getByTestId('preset-apply').click();
  await page.getByTestId('backbone-loaded').waitFor();
  await page.locator('[data-testid=dataset-name]', { hasText: 'demo-train.jsonl' }).waitFor();
  await page.getByTestId('start-run').click();
  await waitFor(page, 'run-step', 'data-value', (v) => Number(v) >= STEPS / 2, `step ${STEPS / 2}`);
  await page.getByTestId('pause-run').click();
  await waitFor(page, 'run-bar', 'data-status', (v) => v === 'paused', 'the pause');
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.mouse.move(0, 0);
  await page.screenshot({ path: 'docs/playground.png' });
  await page.getByTestId('resume-run').click();
  await waitFor(page, 'run-bar', 'data-status', (v) => v === 'done', 'the end of the run');
  await page.getByTestId('routing-panel').screenshot({ path: 'docs/routing.png' });
  console.log('wrote docs/playground.png and docs/routing.png');
} finally {
  await browser.close();
}
