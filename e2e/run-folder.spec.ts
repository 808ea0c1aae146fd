/**
 * A run moves between the browser and the terminal, in Chromium with WebGPU and the runner in Node.
 *
 * 1. A run the page stopped exports as a run folder's zip (checkpoint, metrics, the training data
 *    with its SHA-256), and `train --resume ZIP` finishes it in the runner.
 * 2. A run folder the runner wrote (stopped at step 2 of 6) imports into the runs library: first
 *    refused while other training data is loaded (the error names both hashes), then, with the
 *    run's data, listed at step 2 and continued on the page to its end.
 * That the moved runs end with the bytes of runs never moved is src/worker/run-folder.test.ts's.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { expect, type Page, test, type TestInfo } from '@playwright/test';
import { openApp, writeTrainingFile } from './app';

const run = promisify(execFile);

/** The runner as `npm run runner` starts it, from the repository's root. */
async function runner(args: string[]): Promise<string> {
  const { stderr } = await run('npx', ['vite-node', 'src/cli/bin.ts', '--', ...args], { timeout: 150_000, maxBuffer: 1 << 24 });
  return stderr;
}

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

async function loadDemoAnd(page: Page, data: string): Promise<void> {
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.getByTestId('data-drop-input').setInputFiles(data);
  await expect(page.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
}

test('a run the page stopped exports as a run folder that train --resume finishes', async ({ page }, testInfo: TestInfo) => {
  await openApp(page, '?batch=2&steps=24&ckpt=2&routing=24&lr=0.002&seed=5');
  await loadDemoAnd(page, await writeTrainingFile(testInfo));
  await page.getByTestId('start-run').click();
  await expect.poll(async () => Number((await page.getByTestId('checkpoint-info').getAttribute('data-step').catch(() => null)) ?? 0), { timeout: 120_000 }).toBeGreaterThanOrEqual(2);
  await page.getByTestId('stop-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'stopped');
  const row = page.getByTestId('run-row').first();
  const runId = (await row.getAttribute('data-run'))!;

  const [dl] = await Promise.all([page.waitForEvent('download'), row.getByTestId('run-export-folder').click()]);
  expect(dl.suggestedFilename()).toBe(`${runId}.zip`);
  const zip = testInfo.outputPath(dl.suggestedFilename());
  await dl.saveAs(zip);

  const log = await runner(['train', '--resume', zip]);
  const folder = zip.replace(/\.zip$/, '');
  // It goes on from the checkpoint where the page stopped (every 2 steps, and where the run rests).
  const from = Number(new RegExp(`resuming ${folder} at step (\\d+) of 24`).exec(log)?.[1]);
  expect(from).toBeGreaterThanOrEqual(2);
  expect(from).toBeLessThan(24);
  const metrics = (await readFile(join(folder, 'metrics.jsonl'), 'utf8')).trim().split('\n');
  expect(metrics.length).toBe(24);
  expect(JSON.parse(await readFile(join(folder, 'run.json'), 'utf8')).dataSha256).toBe(await sha256(join(folder, 'data', 'tiny-train.jsonl')));
  expect((await readFile(join(folder, 'adapter_model.safetensors'))).length).toBeGreaterThan(0);
});

test('a run folder the runner wrote imports into the library, refused on other data, and continues on the page', async ({ page }, testInfo: TestInfo) => {
  const data = await writeTrainingFile(testInfo);
  const out = testInfo.outputPath('from-runner');
  await runner(['train', '--model', 'public/models/demo', '--data', data, '--out', out, '--batch', '2', '--steps', '6', '--checkpoint-every', '2', '--stop-after', '2', '--lr', '0.002', '--seed', '5', '--max-length', '64']);
  const files = ['run.json', 'checkpoint.safetensors', 'metrics.jsonl'].map((f) => join(out, f));

  await openApp(page);
  // Other data loaded (the same file with one more record): the folder is refused, naming both hashes.
  const other = testInfo.outputPath('other', 'tiny-train.jsonl');
  await mkdir(dirname(other), { recursive: true });
  await writeFile(other, (await readFile(data, 'utf8')) + JSON.stringify({ instruction: 'one more', input: '', output: 'yes', type: 'world knowledge' }) + '\n');
  await loadDemoAnd(page, other);
  await page.getByTestId('run-folder-drop-input').setInputFiles(files);
  const error = page.getByTestId('runs-error');
  await expect(error).toContainText(await sha256(other));
  await expect(error).toContainText(await sha256(data));
  await expect(page.getByTestId('run-row')).toHaveCount(0);

  // The run's own data: listed at step 2, continued here to its end.
  await page.getByTestId('data-drop-input').setInputFiles(data);
  await expect(page.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
  await page.getByTestId('run-folder-drop-input').setInputFiles(files);
  const row = page.locator('[data-testid="run-row"][data-run="run-from-runner"]');
  await expect(row.getByTestId('run-row-steps')).toHaveText('2 / 6');
  await row.getByTestId('run-continue').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  await expect(row.getByTestId('run-row-steps')).toHaveText('6 / 6');
  await page.getByTestId('runs-panel').screenshot({ path: testInfo.outputPath('runs-panel.png') });
});
