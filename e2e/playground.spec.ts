/**
 * The playground end to end in Chromium with WebGPU (SwiftShader on machines without a GPU):
 *
 * 1. The whole journey on the demo backbone: load it, upload a small JSONL with both data types
 *    (and one bad line), train a few steps, see the charts and a routing heatmap change, run the
 *    knowledge probe, generate text with per-token routing, download the adapter zip and check its
 *    files, import it back, export the metrics.
 * 2. A reload in the middle of a run: the dataset is still there and the run resumes by itself from
 *    the checkpoint, its steps continuing where the checkpoint left off; the banner names the run,
 *    the step the page had shown and the checkpoint it continues from, and which steps are trained
 *    again.
 * 3. The Hugging Face path against a fake Hub (page.route serving a tiny model): check, download
 *    with caching, a second load from the cache without any request, cache deletion; and a local
 *    model folder picked with the folder picker.
 * 4. Settings in the URL: invalid values are reported and replaced, changes are written back.
 *
 * Every test records the requests the page and its worker make: nothing leaves the local server
 * unless the user pressed a Hub button, and then only to huggingface.co.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, type Page, test, type TestInfo } from '@playwright/test';
import { unzipSync } from 'fflate';
import { parameterCount } from '../src/model/config';
import { parseOfficialScript } from '../src/train/official-export';
import { tinyHfFiles } from '../src/test/hf-dir';
import { LOCAL, openApp, recordRequests, writeTrainingFile } from './app';

async function loadDemoAndData(page: Page, testInfo: TestInfo): Promise<void> {
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.getByTestId('data-drop-input').setInputFiles(await writeTrainingFile(testInfo, { badLine: true }));
  await expect(page.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
}

const numberAttr = async (page: Page, testid: string, attr = 'data-value') => Number(await page.getByTestId(testid).getAttribute(attr));

test('the whole journey on the demo backbone: train, watch routing, probe, chat, download and import the adapter', async ({ page, context }, testInfo) => {
  const requests = recordRequests(context);
  // The balancing constraint in its own-group direction at delta and beta 0.1 (URL settings like any other).
  await openApp(page, '?batch=4&steps=8&ckpt=4&routing=2&lr=0.003&maxnew=6&lbcdir=own-group&delta=0.1&beta=0.1&maxlen=256');

  // Backbone: parameter count, memory estimate and limits before loading; the real allocation after.
  await expect(page.getByTestId('param-count')).toBeVisible();
  expect(await numberAttr(page, 'param-count')).toBeGreaterThan(100_000);
  await expect(page.getByTestId('fits')).toHaveAttribute('data-fits', 'true');
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toHaveAttribute('data-name', 'loramoe-playground/demo');
  expect(await numberAttr(page, 'mem-measured')).toBeGreaterThan(0);
  // A maximum length of 256 is held to the backbone's 64 positions, and the field says so.
  await expect(page.getByTestId('setting-maxLength-limit')).toHaveAttribute('data-limit', '64');
  await expect(page.getByTestId('setting-maxLength-limit')).toContainText('samples are cut to 64 tokens');

  // Data: counts per type, the bad record reported by its line, the binary grouping resolved.
  await page.getByTestId('data-drop-input').setInputFiles(await writeTrainingFile(testInfo, { badLine: true }));
  await expect(page.getByTestId('dataset-counts')).toHaveAttribute('data-good', '48');
  await expect(page.getByTestId('dataset-counts')).toHaveAttribute('data-bad', '1');
  await expect(page.getByTestId('dataset-error').first()).toContainText('line 3');
  await expect(page.locator('[data-testid=type-count][data-type="world knowledge"]')).toHaveAttribute('data-count', '24');
  await expect(page.getByTestId('groups-resolved')).toContainText('experts 0-3');
  await expect(page.getByTestId('dataset-summary')).toBeVisible();
  // The demo data is in the demo backbone's words: no token is unknown, and nothing warns.
  await expect(page.getByTestId('unknown-tokens')).toHaveAttribute('data-share', '0');
  await expect(page.getByTestId('unknown-tokens')).toContainText('Unknown tokens: 0%');
  await expect(page.getByTestId('unknown-warning')).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath('1-ready.png'), fullPage: true });

  // The hand-off to the official trainer: the data in its format, the settings on its script's flags.
  const [handOff] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-official').click()]);
  expect(handOff.suggestedFilename()).toBe('loramoe-official-run.zip');
  const handOffPath = testInfo.outputPath('official-run.zip');
  await handOff.saveAs(handOffPath);
  const official = unzipSync(new Uint8Array(await readFile(handOffPath)));
  expect(Object.keys(official).sort()).toEqual(['README.md', 'data/train.json', 'run_loramoe.sh']);
  const officialScript = parseOfficialScript(new TextDecoder().decode(official['run_loramoe.sh']));
  expect(officialScript).toMatchObject({ lora_nums: 8, lora_rank: 4, per_device_train_batch_size: 4, max_steps: 8, lr: 0.003 });
  expect((JSON.parse(new TextDecoder().decode(official['data/train.json'])) as unknown[]).length).toBe(48);
  expect(new TextDecoder().decode(official['README.md'])).toContain('direction "own-group"');

  // Train: the heatmap appears after the first routing window, and changes in a later one.
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('routing-step')).toBeVisible();
  const cell = page.getByTestId('cell-0-0-0');
  await expect(cell).toBeVisible();
  const first = await cell.getAttribute('data-value');
  const firstStep = await numberAttr(page, 'routing-step');
  await expect.poll(async () => (await numberAttr(page, 'routing-step')) > firstStep && (await cell.getAttribute('data-value')) !== first, { timeout: 120_000 }).toBe(true);
  console.log(`[e2e] heatmap cell 0-0-0 (world knowledge, layer 0, expert 0): ${first} at step ${firstStep}, then ${await cell.getAttribute('data-value')}`);
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });
  await expect(page.getByTestId('run-step')).toHaveAttribute('data-value', '8');
  await expect(page.getByTestId('loss-charts')).toHaveAttribute('data-points', '8');
  await expect(page.getByTestId('chart-ce')).toBeVisible();
  await expect(page.getByTestId('group-share-chart')).toBeVisible();
  // Routing is measured on the routing set (held out, dropout off) at the end of the run, with the
  // tokens behind every heatmap and bar; the last training window is the second choice.
  await expect(page.getByTestId('routing-view-routingSet')).toHaveAttribute('aria-checked', 'true');
  await expect(page.getByTestId('routing-source')).toHaveAttribute('data-kind', 'routingSet');
  await expect(page.getByTestId('routing-source')).toContainText('held out of training');
  await expect(page.getByTestId('routing-step')).toHaveAttribute('data-value', '8');
  const setTokens = await numberAttr(page, 'heatmap-tokens-0');
  expect(setTokens).toBeGreaterThan(0);
  expect(await numberAttr(page, 'group-share-tokens-0')).toBe(setTokens);
  // The chart's axis labels carry the counts ("world knowledge (61 tokens)"; the label may wrap into lines).
  await expect(page.getByTestId('group-share-chart')).toContainText(new RegExp(`world\\s*knowledge\\s*\\(${setTokens.toLocaleString('en-US')}\\s*tokens\\)`));
  await page.getByTestId('routing-view-window').click();
  await expect(page.getByTestId('routing-source')).toHaveAttribute('data-kind', 'window');
  await expect(page.getByTestId('routing-source')).toContainText('steps 7-8 (dropout on');
  expect(await numberAttr(page, 'heatmap-tokens-0')).toBeGreaterThan(0);
  await page.getByTestId('routing-view-routingSet').click();
  await expect(page.getByTestId('routing-source')).toHaveAttribute('data-kind', 'routingSet');
  // Which way the constraint pushes, and its optimum beside each type's measured shares: with two
  // equal groups and the per-sample mean, (1 + delta) / 2 = 55% on every type's own group.
  await expect(page.getByTestId('constraint-direction')).toContainText("toward its own data type's expert group, to 55%");
  const targets = await page
    .locator('[data-testid^="group-share-target-"]')
    .evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-value'))).filter((x) => Number.isFinite(x)));
  expect(targets.length).toBeGreaterThanOrEqual(2);
  for (const v of targets) expect(v).toBeCloseTo(0.55, 9);
  await expect(page.getByTestId('checkpoint-info')).toHaveAttribute('data-step', '8');
  // The estimate shown before the run equals the bytes the run allocated (weights + graph + optimizer).
  expect(await numberAttr(page, 'memory-measured')).toBe(await numberAttr(page, 'mem-total'));
  await page.screenshot({ path: testInfo.outputPath('2-trained.png'), fullPage: true });

  // Knowledge probe on the demo's held-out questions, before and after.
  await page.getByTestId('use-demo-probe').click();
  await expect(page.getByTestId('probe-data')).toHaveAttribute('data-count', /\d+/);
  await page.getByTestId('probe-before').click();
  await expect(page.getByTestId('probe-accuracy-before')).not.toHaveText('not run');
  await page.getByTestId('probe-after').click();
  await expect(page.getByTestId('probe-accuracy-after')).not.toHaveText('not run');
  await expect(page.getByTestId('probe-table')).toBeVisible();
  console.log(`[e2e] probe: before ${await page.getByTestId('probe-accuracy-before').textContent()}, after ${await page.getByTestId('probe-accuracy-after').textContent()}`);
  await page.getByTestId('probe-panel').screenshot({ path: testInfo.outputPath('3-probe.png') });

  // Chat: streamed tokens, each coloured by its dominant expert group, with per-layer detail.
  await page.getByTestId('chat-prompt').fill('what is the capital of france ?');
  await page.getByTestId('chat-send').click();
  await expect(page.getByTestId('chat-status')).toHaveAttribute('data-finish', /stop|length|capacity/);
  await expect(page.getByTestId('chat-token-0')).toHaveAttribute('data-group', /^\d+$/);
  await page.getByTestId('chat-token-0').hover();
  await expect(page.getByTestId('chat-token-layers')).toBeVisible();
  await expect(page.getByTestId('chat-token-layers')).toContainText('gate_proj');
  await page.getByTestId('chat-panel').screenshot({ path: testInfo.outputPath('4-chat.png') });
  // Adapter off: the frozen backbone answers, without routing.
  await page.getByTestId('chat-adapter').uncheck();
  await page.getByTestId('chat-send').click();
  await expect(page.getByTestId('chat-status')).toContainText('frozen backbone');
  await expect(page.getByTestId('chat-token-0')).toHaveAttribute('data-group', 'none');

  // The adapter as a zip in the official layout.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-adapter').click()]);
  const zipPath = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(zipPath);
  expect(download.suggestedFilename()).toMatch(/^loramoe-adapter-step8\.zip$/);
  const files = unzipSync(new Uint8Array(await readFile(zipPath)));
  expect(Object.keys(files).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
  const st = files['adapter_model.safetensors'];
  const headerLength = Number(new DataView(st.buffer, st.byteOffset, st.byteLength).getBigUint64(0, true));
  expect(headerLength).toBeGreaterThan(0);
  expect(8 + headerLength).toBeLessThan(st.byteLength);
  const header = JSON.parse(new TextDecoder().decode(st.subarray(8, 8 + headerLength))) as Record<string, { dtype: string; shape: number[] }>;
  const prefix = 'base_model.model.model.layers.0.mlp.gate_proj';
  expect(header[`${prefix}.lora_route.weight`].shape).toEqual([8, 96]);
  expect(header[`${prefix}.lora_A0.weight`].shape).toEqual([4, 96]);
  expect(header[`${prefix}.lora_B7.weight`].shape).toEqual([256, 4]);
  expect(header['base_model.model.model.layers.2.mlp.down_proj.lora_A7.weight'].dtype).toBe('F32');
  const cfg = JSON.parse(new TextDecoder().decode(files['adapter_config.json'])) as Record<string, unknown>;
  expect(cfg).toMatchObject({ r: 4, lora_alpha: 32, lora_nums: 8, blc_alpha: 0.1, blc_weight: 0.1, peft_type: 'LORA', target_modules: ['gate_proj', 'up_proj', 'down_proj'] });
  expect(cfg.loramoe_playground).toMatchObject({ lbcDirection: 'own-group', lbcImportance: 'mean' });

  // Import it back: the model now carries the imported adapter.
  await page.getByTestId('adapter-drop-input').setInputFiles(zipPath);
  await expect(page.getByTestId('adapter-state')).toHaveAttribute('data-origin', 'imported');
  await expect(page.getByTestId('continue-adapter')).toBeChecked();
  await page.screenshot({ path: testInfo.outputPath('5-imported.png'), fullPage: true });
  // ... and training continues from it.
  await page.getByTestId('setting-steps').fill('2');
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done');
  await expect(page.getByTestId('adapter-state')).toHaveAttribute('data-origin', 'trained');
  await expect(page.getByTestId('loss-charts')).toHaveAttribute('data-points', '2');

  const outside = requests.filter((u) => !LOCAL.test(u));
  expect(outside, 'requests that left the local server').toEqual([]);
});

test('a reload in the middle of a run keeps the dataset and resumes from the checkpoint by itself, and the banner says which run, from which checkpoint, and which steps are trained again', async ({ page, context }, testInfo) => {
  const requests = recordRequests(context);
  await openApp(page, '?batch=2&steps=40&ckpt=3&routing=3&lr=0.002');
  await loadDemoAndData(page, testInfo);
  await page.getByTestId('start-run').click();
  // The page is past a stored checkpoint (at step 6 or later).
  await expect
    .poll(
      async () => {
        const ckpt = Number((await page.getByTestId('checkpoint-info').getAttribute('data-step').catch(() => null)) ?? 0);
        return ckpt >= 6 && (await numberAttr(page, 'run-step')) > ckpt;
      },
      { timeout: 120_000 },
    )
    .toBe(true);
  // Reload mid-run (the metric series is saved with each checkpoint, so no wait is needed).
  const before = await numberAttr(page, 'run-step');
  expect(before).toBeLessThan(40);
  await page.reload();
  await expect(page.getByTestId('kernel-check')).toHaveAttribute('data-passed', 'true');

  // The dataset is back, and the run resumes without a click: the backbone is loaded again on its
  // own, and steps continue from the checkpoint.
  await expect(page.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
  const banner = page.getByTestId('resumed-banner');
  await expect(banner).toBeVisible({ timeout: 120_000 });
  const saved = Number(await banner.getAttribute('data-from-step'));
  expect(saved).toBeGreaterThanOrEqual(6);
  // The banner: the run, the step the header showed (or a later one that arrived before the
  // reload, never an earlier one), the checkpoint, and the steps trained again.
  const seen = Number(await banner.getAttribute('data-seen-step'));
  const redone = Number(await banner.getAttribute('data-redone'));
  expect(seen).toBeGreaterThanOrEqual(before);
  expect(saved).toBeLessThanOrEqual(seen);
  expect(redone).toBe(seen - saved);
  await expect(banner).toContainText('Run 1: LoRAMoE');
  await expect(banner).toContainText(`interrupted at step ${seen}, from its checkpoint at step ${saved}`);
  await expect(banner).toContainText(redone === 0 ? 'no step is trained again' : redone === 1 ? `step ${seen} is trained again` : `steps ${saved + 1}-${seen} are trained again`);
  // The routing measured on the routing set is kept too.
  await expect(page.getByTestId('routing-source')).toHaveAttribute('data-kind', 'routingSet');
  await page.screenshot({ path: testInfo.outputPath('reload-1-resuming.png'), fullPage: true });
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', /running|done/);
  await expect.poll(() => numberAttr(page, 'run-step'), { timeout: 60_000 }).toBeGreaterThanOrEqual(saved + 3);
  // The banner's Stop stops the resumed run.
  await page.getByTestId('resumed-stop').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'stopped');

  // The metric series runs 1, 2, 3, ... without a gap or a repeated step across the reload.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-metrics-json').click()]);
  const body = JSON.parse(await readFile((await dl.path())!, 'utf8')) as { metrics: { step: number }[]; totalSteps: number };
  const steps = body.metrics.map((m) => m.step);
  expect(steps).toEqual(Array.from({ length: steps.length }, (_, i) => i + 1));
  expect(steps.length).toBeGreaterThanOrEqual(saved + 3);
  expect(body.totalSteps).toBe(40);
  const [csv] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-metrics-csv').click()]);
  const rows = (await readFile((await csv.path())!, 'utf8')).trim().split('\n');
  expect(rows[0]).toBe('step,ce,lbc,loss,gradNorm,lr,tokens,tokensPerSecond,skipped,epoch');
  expect(rows.length).toBe(steps.length + 1);
  console.log(`[e2e] reloaded at step ${before}, resumed from checkpoint ${saved}, stopped at ${steps[steps.length - 1]}`);
  await page.screenshot({ path: testInfo.outputPath('reload-2-resumed.png'), fullPage: true });
  expect(requests.filter((u) => !LOCAL.test(u))).toEqual([]);
});

test('a Hugging Face model is downloaded only on request, cached, loaded again from the cache, and deleted; a local folder loads too', async ({ page, context }, testInfo) => {
  const repo = 'test-org/tiny-llama';
  const tiny = tinyHfFiles({ dtype: 'BF16', shards: 2 });
  const hubHits: string[] = [];
  await context.route('https://huggingface.co/**', async (route) => {
    const url = route.request().url();
    hubHits.push(url);
    if (url === `https://huggingface.co/api/models/${repo}`) {
      await route.fulfill({ json: { id: repo, siblings: [...tiny.files.keys(), 'README.md'].map((rfilename) => ({ rfilename })) }, headers: { 'access-control-allow-origin': '*' } });
      return;
    }
    const prefix = `https://huggingface.co/${repo}/resolve/main/`;
    const body = url.startsWith(prefix) ? tiny.files.get(decodeURIComponent(url.slice(prefix.length))) : undefined;
    if (!body) await route.fulfill({ status: 404, body: 'Entry not found', headers: { 'access-control-allow-origin': '*' } });
    else await route.fulfill({ status: 200, body: Buffer.from(body), headers: { 'content-type': 'application/octet-stream', 'access-control-allow-origin': '*' } });
  });
  const requests = recordRequests(context);
  await openApp(page);
  await page.getByTestId('source-hub').click();
  await page.getByTestId('hub-repo').fill(repo);
  await page.waitForTimeout(300);
  expect(hubHits, 'no Hub request before the user asks').toEqual([]);

  // Check: only config.json, for the parameter count and the estimate.
  await page.getByTestId('hub-inspect').click();
  await expect(page.getByTestId('param-count')).toHaveAttribute('data-value', String(parameterCount(tiny.config)));
  expect(hubHits).toEqual([`https://huggingface.co/${repo}/resolve/main/config.json`]);

  // Download and load: every file once (config.json from the cache).
  await page.getByTestId('hub-download').click();
  await expect(page.getByTestId('backbone-loaded')).toHaveAttribute('data-name', repo);
  const files = hubHits.filter((u) => u.includes('/resolve/')).map((u) => u.split('/resolve/main/')[1]);
  expect(files.sort()).toEqual([...tiny.files.keys()].sort());
  await expect(page.locator(`[data-testid=hub-cache-entry][data-repo="${repo}"]`)).toBeVisible();
  await page.getByTestId('backbone-panel').screenshot({ path: testInfo.outputPath('hub-1-loaded.png') });

  // The next visit loads from the cache without a single request to the Hub.
  const hitsBefore = hubHits.length;
  await page.reload();
  await expect(page.getByTestId('kernel-check')).toHaveAttribute('data-passed', 'true');
  await page.getByTestId('source-hub').click();
  await expect(page.getByTestId('hub-repo')).toHaveValue(repo);
  await expect(page.getByTestId('hub-download')).toHaveText('Load from cache');
  await page.getByTestId('hub-download').click();
  await expect(page.getByTestId('backbone-loaded')).toHaveAttribute('data-name', repo);
  expect(hubHits.length).toBe(hitsBefore);

  // Deleting the cache empties the list.
  await page.locator(`[data-testid=hub-cache-entry][data-repo="${repo}"] [data-testid=hub-cache-delete]`).click();
  await expect(page.getByTestId('hub-cache-entry')).toHaveCount(0);
  await expect(page.getByTestId('hub-download')).toHaveText('Download and load');

  // A local folder, picked with the folder picker, loads through the same checks.
  const dir = testInfo.outputPath('local-model');
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of tinyHfFiles().files) await writeFile(join(dir, name), bytes);
  await page.getByTestId('source-local').click();
  await page.getByTestId('model-drop-input').setInputFiles(dir);
  await expect(page.getByTestId('local-files')).toContainText('4 files');
  await page.getByTestId('load-local').click();
  await expect(page.getByTestId('backbone-loaded')).toHaveAttribute('data-name', 'local-model');

  const outside = requests.filter((u) => !LOCAL.test(u));
  expect(outside.every((u) => u.startsWith('https://huggingface.co/')), `only the Hub, on request: ${outside.join(', ')}`).toBe(true);
  expect(outside.length).toBe(hubHits.length);
});

test('settings live in the URL: invalid values are reported and replaced, changes are written back', async ({ page }) => {
  await openApp(page, '?lr=abc&experts=999&batch=3&seed=7');
  const errors = page.getByTestId('url-error');
  await expect(errors).toHaveCount(2);
  await expect(page.locator('[data-testid=url-error][data-param=lr]')).toContainText('not a number');
  await expect(page.locator('[data-testid=url-error][data-param=experts]')).toContainText('out of range');
  await expect(page.getByTestId('setting-lr')).toHaveValue('0.005');
  await expect(page.getByTestId('setting-experts')).toHaveValue('8');
  await expect(page.getByTestId('setting-batch')).toHaveValue('3');
  expect(new URL(page.url()).searchParams.get('lr')).toBe('0.005');
  expect(new URL(page.url()).searchParams.get('seed')).toBe('7');

  await page.getByTestId('setting-rank').fill('16');
  await expect.poll(() => new URL(page.url()).searchParams.get('rank')).toBe('16');
  await page.getByTestId('setting-dropout').fill('1.5');
  await expect(page.getByTestId('setting-dropout-error')).toContainText('out of range');
  expect(new URL(page.url()).searchParams.get('dropout')).toBe('0.05');
  await page.getByTestId('mode-lora').click();
  await expect.poll(() => new URL(page.url()).searchParams.get('mode')).toBe('lora');

  // The link reproduces the settings in a fresh page.
  const link = page.url();
  const other = await page.context().newPage();
  await other.goto(link);
  await expect(other.getByTestId('setting-rank')).toHaveValue('16');
  await expect(other.getByTestId('mode-lora')).toHaveAttribute('aria-checked', 'true');
  await expect(other.getByTestId('url-errors')).toHaveCount(0);
});
