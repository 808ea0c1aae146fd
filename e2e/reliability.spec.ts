/**
 * Reliability and security in Chromium with WebGPU (SwiftShader on machines without a GPU). The
 * faults are injected through the test hooks a page opened with `?test-hooks` exposes
 * (window.__loramoeTest, answered by the engine worker's `debug` command; see src/store/engine-bridge.ts):
 *
 * 1. A NaN written into a trainable tensor mid-run: three faulty steps are reported with their step
 *    and what was not finite, then the rollback to the last checkpoint; then the GPU device is
 *    destroyed mid-run: the worker gets a new device, reloads the backbone and the checkpoint, says
 *    so, and training goes on; the dataset, the settings and a gap-free metric series survive.
 * 2. Storage: a full quota is reported (IDBObjectStore.put stubbed to throw QuotaExceededError in
 *    the page, and a checkpoint write failing the same way in the worker); a checkpoint whose write
 *    never completes (the tab is closed first) is never loaded: the next visit resumes from the
 *    previous one, and nothing of the interrupted write is stored.
 * 3. Security: script payloads in uploaded data show as text and nothing runs; the
 *    Content-Security-Policy is in force (an injected inline script is blocked, and the app itself
 *    raises no violation); no request leaves 127.0.0.1.
 */
import { readFile } from 'node:fs/promises';
import { expect, type Page, test, type TestInfo } from '@playwright/test';
import { LOCAL, openApp, recordRequests, writeTrainingFile } from './app';

type Hooks = { loseDevice(): void; injectFault(target: 'gradient' | 'parameter'): void; failCheckpointWrite(fail: 'stall' | 'quota'): void };
const hook = (page: Page, fn: (h: Hooks) => void) => page.evaluate(`(${fn.toString()})(window.__loramoeTest)`);

async function loadDemoAndData(page: Page, testInfo: TestInfo): Promise<void> {
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.getByTestId('data-drop-input').setInputFiles(await writeTrainingFile(testInfo));
  await expect(page.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
}

const numberAttr = async (page: Page, testid: string, attr = 'data-value') => Number(await page.getByTestId(testid).getAttribute(attr));
const checkpointStep = async (page: Page) => Number((await page.getByTestId('checkpoint-info').getAttribute('data-step').catch(() => null)) ?? 0);
const events = (page: Page, kind: string) => page.locator(`[data-testid=run-event][data-kind=${kind}]`);

test('numerical faults roll back to the last checkpoint, and a lost GPU device is replaced mid-run without losing anything', async ({ page, context }, testInfo) => {
  const requests = recordRequests(context);
  await openApp(page, '?test-hooks&batch=2&steps=40&ckpt=3&routing=3&lr=0.002&faults=3');
  await loadDemoAndData(page, testInfo);
  await page.getByTestId('start-run').click();
  await expect.poll(() => checkpointStep(page), { timeout: 120_000 }).toBeGreaterThanOrEqual(3);

  // A NaN in a trainable tensor: every step faults until the rollback.
  await hook(page, (h) => h.injectFault('parameter'));
  await expect(events(page, 'rollback')).toHaveCount(1, { timeout: 120_000 });
  const faults = events(page, 'nonFinite');
  await expect(faults).toHaveCount(3);
  const faultSteps = await faults.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-step'))));
  expect(faultSteps[1] - faultSteps[0]).toBe(1);
  expect(faultSteps[2] - faultSteps[1]).toBe(1);
  await expect(faults.first()).toContainText(`Step ${faultSteps[0]}: the loss (NaN) and the gradient norm (NaN) were not finite; the update was skipped`);
  const rollback = events(page, 'rollback');
  const rolledTo = Number(await rollback.getAttribute('data-to-step'));
  expect(rolledTo % 3).toBe(0);
  expect(rolledTo).toBeLessThan(faultSteps[0]);
  await expect(rollback).toContainText(`steps ${faultSteps[0]}-${faultSteps[2]}`);
  await expect(rollback).toContainText(`rolled back to the checkpoint at step ${rolledTo}`);
  await expect(rollback).toContainText('No setting was changed');
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'running');
  console.log(`[e2e] faults at steps ${faultSteps.join(', ')}; rolled back to ${rolledTo}`);
  await page.getByTestId('run-panel').screenshot({ path: testInfo.outputPath('faults.png') });

  // The run trains on past the faults, then loses its device.
  await expect.poll(() => checkpointStep(page), { timeout: 120_000 }).toBeGreaterThan(faultSteps[2]);
  await hook(page, (h) => h.loseDevice());
  const lost = events(page, 'deviceLost');
  await expect(lost).toHaveCount(1, { timeout: 60_000 });
  const lostAt = Number(await lost.getAttribute('data-step'));
  const resumedFrom = Number(await lost.getAttribute('data-to-step'));
  expect(resumedFrom % 3).toBe(0);
  expect(resumedFrom).toBeLessThanOrEqual(lostAt);
  await expect(lost).toContainText(`The GPU device was lost at step ${lostAt}`);
  await expect(lost).toContainText(`resumed from the checkpoint at step ${resumedFrom}`);
  console.log(`[e2e] ${await lost.textContent()}`);
  // Training goes on on the new device; nothing the user gave is gone.
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'running');
  await expect.poll(() => numberAttr(page, 'run-step'), { timeout: 120_000 }).toBeGreaterThanOrEqual(lostAt + 2);
  await expect(page.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
  await expect(page.getByTestId('setting-lr')).toHaveValue('0.002');
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.getByTestId('stop-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'stopped');
  await page.getByTestId('run-panel').screenshot({ path: testInfo.outputPath('device-lost.png') });

  // The metric series: 1, 2, 3, ... without a gap, a repeat or a NaN, across the rollback and the new device.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-metrics-json').click()]);
  const body = JSON.parse(await readFile((await dl.path())!, 'utf8')) as { metrics: { step: number; loss: number | null }[] };
  const steps = body.metrics.map((m) => m.step);
  expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
  expect(steps.length).toBeGreaterThanOrEqual(lostAt + 2);
  expect(body.metrics.every((m) => typeof m.loss === 'number' && Number.isFinite(m.loss))).toBe(true);
  expect(requests.filter((u) => !LOCAL.test(u))).toEqual([]);
});

test('a full storage quota is reported, and a checkpoint write interrupted by closing the tab is never loaded', async ({ browser }, testInfo) => {
  // The page's writes (datasets, settings, metric series): every IDBObjectStore.put throws as a full quota does.
  const full = await browser.newContext();
  await full.addInitScript(() => {
    IDBObjectStore.prototype.put = function () {
      throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    };
  });
  const fullPage = await full.newPage();
  await openApp(fullPage);
  await fullPage.getByTestId('data-drop-input').setInputFiles(await writeTrainingFile(testInfo));
  await expect(fullPage.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
  await expect(fullPage.getByTestId('storage-error')).toContainText('Browser storage is full: the dataset tiny-train.jsonl could not be saved');
  await expect(fullPage.getByTestId('storage-error')).toContainText('loaded for this visit but will not be there after a reload');
  await fullPage.getByTestId('run-panel').screenshot({ path: testInfo.outputPath('quota.png') });
  await full.close();

  const context = await browser.newContext();
  const page = await context.newPage();
  await openApp(page, '?test-hooks&batch=2&steps=40&ckpt=2&routing=2&lr=0.002');
  await loadDemoAndData(page, testInfo);
  // The worker's checkpoint write fails on a full quota: the run goes on and the user is told.
  await hook(page, (h) => h.failCheckpointWrite('quota'));
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('storage-error')).toContainText('Browser storage is full: the checkpoint of step 2 could not be saved', { timeout: 120_000 });
  await expect.poll(() => checkpointStep(page), { timeout: 120_000 }).toBeGreaterThanOrEqual(4);

  // The next write stalls before its transaction; the tab is closed right there.
  await hook(page, (h) => h.failCheckpointWrite('stall'));
  const stalled = events(page, 'testHook').filter({ hasText: 'stalls before its transaction' });
  await expect(stalled).toHaveCount(1, { timeout: 120_000 });
  const interrupted = Number(await stalled.getAttribute('data-step'));
  const previous = await checkpointStep(page);
  expect(previous).toBe(interrupted - 2);
  await page.close();

  // A new tab: the dataset is there, and the run resumes from the previous, complete checkpoint.
  const next = await context.newPage();
  await openApp(next, '?batch=2&steps=40&ckpt=2&routing=2&lr=0.002');
  await expect(next.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
  // The run resumes by itself, from the previous, complete checkpoint.
  await expect(next.getByTestId('resumed-banner')).toHaveAttribute('data-from-step', String(previous));
  // One checkpoint is stored, the pointer's.
  const stored = await next.evaluate(
    () =>
      new Promise<{ keys: string[]; pointer: string }>((resolve, reject) => {
        const open = indexedDB.open('loramoe-playground');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction(['kv', 'checkpoints'], 'readonly');
          const keys = tx.objectStore('checkpoints').getAllKeys();
          const ptr = tx.objectStore('kv').get('checkpoint');
          tx.oncomplete = () => resolve({ keys: keys.result.map(String), pointer: (ptr.result as { id: string }).id });
        };
      }),
  );
  expect(stored.keys).toEqual([stored.pointer]);
  await expect(next.getByTestId('run-bar')).toHaveAttribute('data-status', /running|done/);
  await expect.poll(() => numberAttr(next, 'run-step'), { timeout: 120_000 }).toBeGreaterThanOrEqual(previous + 2);
  await next.getByTestId('stop-run').click();
  console.log(`[e2e] checkpoint ${interrupted} interrupted when the tab closed; resumed from ${previous}`);
  await context.close();
});

test('script payloads in uploaded data show as text, the Content-Security-Policy is in force, and no request leaves the local server', async ({ page, context }, testInfo) => {
  const requests = recordRequests(context);
  await page.addInitScript(() => {
    const w = window as unknown as { __csp: { directive: string; blocked: string; sample: string }[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push({ directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample }));
  });
  const response = await page.goto('/?batch=2&steps=2&ckpt=0&maxnew=4&maxlen=64');
  expect(response!.headers()['content-security-policy']).toContain("script-src 'self'");
  await expect(page.getByTestId('kernel-check')).toHaveAttribute('data-passed', 'true');

  const script = '<script>window.__pwned=1</script>';
  const img = '<img src=x onerror="window.__pwned=1">';
  const records = [
    { instruction: script, input: img, output: img, type: 'world knowledge' },
    { instruction: img, input: '', output: script, type: 'downstream task' },
    // A bad record (no output) whose fields carry a payload too: its problem is listed.
    { instruction: '<svg onload="window.__pwned=1"></svg>', input: script, type: 'world knowledge' },
  ];
  const name = '<img src=x onerror=window.__pwned=2>.jsonl';
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.getByTestId('data-drop-input').setInputFiles({ name, mimeType: 'application/json', buffer: Buffer.from(records.map((r) => JSON.stringify(r)).join('\n')) });
  await expect(page.getByTestId('dataset-name')).toHaveText(name);
  await page.getByTestId('dataset-preview').locator('xpath=ancestor::details').locator('summary').click();
  const cells = page.getByTestId('preview-row').locator('td');
  await expect(cells.filter({ hasText: script }).first()).toBeVisible();
  await expect(cells.filter({ hasText: img }).first()).toBeVisible();
  await expect(page.getByTestId('dataset-error')).toHaveCount(1);
  // Train on it and ask the model with a payload prompt: everything stays text.
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  await page.getByTestId('chat-prompt').fill(script + img);
  await page.getByTestId('chat-send').click();
  await expect(page.getByTestId('chat-status')).toHaveAttribute('data-finish', /stop|length|capacity/);
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  expect(await page.locator('#root img[src="x"], #root script, #root svg[onload]').count()).toBe(0);
  await page.screenshot({ path: testInfo.outputPath('payloads.png'), fullPage: true });

  // The app ran its whole journey without a single violation: the policy does not break it.
  const w = () => page.evaluate(() => (window as unknown as { __csp: { directive: string; blocked: string; sample: string }[] }).__csp);
  expect(await w()).toEqual([]);
  // An inline script is blocked.
  await page.addScriptTag({ content: 'window.__inline = 1;' }).catch(() => undefined);
  expect(await page.evaluate(() => (window as unknown as { __inline?: number }).__inline)).toBeUndefined();
  await expect.poll(async () => (await w()).map((v) => v.directive)).toContain('script-src-elem');
  // So is a request to another origin (connect-src).
  const fetched = await page.evaluate(() => fetch('https://example.com/').then(() => 'fetched', (e: Error) => e.name));
  expect(fetched).toBe('TypeError');
  await expect.poll(async () => (await w()).map((v) => v.directive)).toContain('connect-src');
  const outside = requests.filter((u) => !LOCAL.test(u));
  expect(outside, 'requests that left the local server').toEqual([]);
});
