/**
 * Nothing lost: the runs library and resuming without a click, in Chromium with WebGPU.
 *
 * 1. A reload in the middle of a run resumes it by itself from its last checkpoint (a banner names
 *    the step), and the adapter it ends with is byte-identical to the one an uninterrupted run with
 *    the same settings and seed ends with.
 * 2. A stopped run keeps its adapter: after the browser is closed and opened again (the same
 *    profile), the library downloads the very bytes the Download button gave before closing.
 *    Importing an adapter then adds its own entry and leaves the run as it was.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Download, expect, type Page, test, type TestInfo } from '@playwright/test';
import { LOCAL, openApp, recordRequests, writeTrainingFile } from './app';

async function loadDemoAndData(page: Page, testInfo: TestInfo): Promise<void> {
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.getByTestId('data-drop-input').setInputFiles(await writeTrainingFile(testInfo));
  await expect(page.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
}

async function bytesOf(download: Download): Promise<Buffer> {
  return readFile((await download.path())!);
}

async function downloadAdapter(page: Page): Promise<{ name: string; bytes: Buffer }> {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-adapter').click()]);
  return { name: dl.suggestedFilename(), bytes: await bytesOf(dl) };
}

const SETTINGS = '?batch=2&steps=16&ckpt=4&routing=8&lr=0.002&seed=7';

test('a reload mid-run resumes with no click, and the adapter it ends with is byte-identical to an uninterrupted run', async ({ page, context }, testInfo) => {
  const requests = recordRequests(context);
  await openApp(page, SETTINGS);
  await loadDemoAndData(page, testInfo);

  // The run without interruption.
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done', { timeout: 150_000 });
  const whole = await downloadAdapter(page);
  expect(whole.name).toBe('loramoe-adapter-step16.zip');

  // The same run again, reloaded once its first checkpoint is stored.
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'running');
  await expect.poll(async () => Number((await page.getByTestId('checkpoint-info').getAttribute('data-step').catch(() => null)) ?? 0), { timeout: 120_000 }).toBeGreaterThanOrEqual(4);
  await page.reload();

  // No click: the run resumes by itself, and the banner says from where.
  const banner = page.getByTestId('resumed-banner');
  await expect(banner).toBeVisible({ timeout: 120_000 });
  const from = Number(await banner.getAttribute('data-from-step'));
  expect(from).toBeGreaterThanOrEqual(4);
  expect(from).toBeLessThan(16);
  await expect(banner).toContainText(`step ${from}`);
  await expect(page.getByTestId('resume-box')).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath('1-resumed.png'), fullPage: true });
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done', { timeout: 150_000 });

  const resumed = await downloadAdapter(page);
  expect(resumed.name).toBe(whole.name);
  expect(resumed.bytes.length).toBe(whole.bytes.length);
  expect(resumed.bytes.equals(whole.bytes), 'the resumed run ends with the same adapter bytes').toBe(true);

  // Both runs are in the library, each with its adapter kept.
  const rows = page.getByTestId('run-row');
  await expect(rows).toHaveCount(2);
  await expect(page.locator('[data-testid="run-row"][data-adapter="kept"]')).toHaveCount(2);
  console.log(`[e2e] reloaded after checkpoint ${from}; adapters of ${whole.bytes.length} bytes are identical`);
  expect(requests.filter((u) => !LOCAL.test(u))).toEqual([]);
});

test('a stopped run keeps its adapter across closing the browser, and importing an adapter leaves the run intact', async ({ baseURL }, testInfo) => {
  const profile = await mkdtemp(join(tmpdir(), 'loramoe-profile-'));
  const launch = () =>
    chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
      baseURL,
      acceptDownloads: true,
    });
  try {
    let context = await launch();
    let page = await context.newPage();
    await openApp(page, '?batch=2&steps=40&ckpt=4&routing=4&lr=0.002&seed=3');
    await loadDemoAndData(page, testInfo);
    await page.getByTestId('start-run').click();
    await expect.poll(() => page.getByTestId('run-step').getAttribute('data-value').then(Number), { timeout: 120_000 }).toBeGreaterThanOrEqual(5);
    await page.getByTestId('stop-run').click();
    await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'stopped');
    const row = page.getByTestId('run-row').first();
    await expect(row).toHaveAttribute('data-adapter', 'kept');
    const runId = (await row.getAttribute('data-run'))!;
    const stepsText = await row.getByTestId('run-row-steps').textContent();
    const before = await downloadAdapter(page);
    await context.close();

    // The browser again, same profile: the run is in the library with its adapter.
    context = await launch();
    page = await context.newPage();
    await openApp(page);
    const again = page.locator(`[data-testid="run-row"][data-run="${runId}"]`);
    await expect(again).toHaveAttribute('data-status', 'stopped');
    await expect(again.getByTestId('run-row-steps')).toHaveText(stepsText!);
    // Stopped by the user: it waits to be continued, it does not resume by itself.
    await expect(page.getByTestId('resumed-banner')).toHaveCount(0);
    const [dl] = await Promise.all([page.waitForEvent('download'), again.getByTestId('run-download').click()]);
    expect(dl.suggestedFilename()).toBe(before.name);
    const after = await bytesOf(dl);
    expect(after.equals(before.bytes), 'the kept adapter is the one downloaded before closing').toBe(true);
    await expect(page.getByTestId('storage-used')).toContainText('The library holds');

    // Importing an adapter: its own entry; the stopped run keeps its steps and adapter.
    await page.getByTestId('load-demo').click();
    await expect(page.getByTestId('backbone-loaded')).toBeVisible();
    const zipPath = testInfo.outputPath(before.name);
    await (await import('node:fs/promises')).writeFile(zipPath, before.bytes);
    await page.getByTestId('adapter-drop-input').setInputFiles(zipPath);
    await expect(page.getByTestId('adapter-state')).toHaveAttribute('data-origin', 'imported');
    await expect(page.getByTestId('run-row')).toHaveCount(2);
    const imported = page.locator('[data-testid="run-row"][data-origin="imported"]');
    await expect(imported).toHaveAttribute('data-adapter', 'kept');
    await expect(again.getByTestId('run-row-steps')).toHaveText(stepsText!);
    await expect(again).toHaveAttribute('data-adapter', 'kept');
    // Opening the stopped run brings its curves back.
    await again.getByTestId('run-open').click();
    await expect(page.getByTestId('loss-charts')).toHaveAttribute('data-points', /^[1-9]\d*$/);
    await page.screenshot({ path: testInfo.outputPath('2-library.png'), fullPage: true });
    await context.close();
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
});
