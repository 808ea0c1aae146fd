/**
 * The playground as a newcomer meets it (issue 23), in as few page loads as SwiftShader allows:
 *
 * 1. At 1,400 px: the sidebar jumps between the parts; the constraint's direction and importance
 *    are in the Training settings; the comparison shows the settings it takes, editable; a bad CSV
 *    row is reported once, counts read in the singular where they are one; while a run holds the
 *    model its curves come first; the probe's "after" is scored when a run ends; every heatmap
 *    says its own-group share and target; Open in the runs library loads that run's model, and the
 *    probe then scores it; unavailable buttons say why on focus. Then at 390 px: chart labels whole,
 *    nothing wider than the screen, run names on a line.
 * 2. An imported adapter (a PEFT rsLoRA zip) is named by its file and base model, says how its alpha
 *    scales, and says what it changed in the settings.
 *
 * The resume banner after a reload mid-run (the run, the step shown, the checkpoint, the steps
 * trained again) is checked in e2e/playground.spec.ts's reload test, on the same reload.
 */
import { writeFile } from 'node:fs/promises';
import { expect, type Page, test, type TestInfo } from '@playwright/test';
import { zipSync } from 'fflate';
import { expectNoOverflow, openApp, PHONE, writeProbeFile, writeTrainingFile } from './app';

const WIDE = { width: 1400, height: 900 };

async function loadDemo(page: Page, testInfo: TestInfo): Promise<void> {
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.getByTestId('data-drop-input').setInputFiles(await writeTrainingFile(testInfo));
  await expect(page.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
}

/** Trains the form's run to its end; returns its id in the library (a new one: not `previous`). */
async function trainToEnd(page: Page, previous: string): Promise<string> {
  const onScreen = () => page.locator('[data-testid="run-row"][aria-current="true"]').getAttribute('data-run');
  await page.getByTestId('start-run').click();
  // The run bar still says "done" of the previous run until the new one starts: wait for the new run's row.
  await expect.poll(onScreen, { timeout: 60_000 }).not.toBe(previous);
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done', { timeout: 150_000 });
  return (await onScreen())!;
}

/**
 * A PEFT LoRA adapter for the demo backbone (3 layers, FFN 256 -> hidden 96) on down_proj, with
 * use_rslora, zipped: lora_alpha 8 at rank 4 scales by 8 / sqrt(4) = 4, alpha 16 in the playground.
 */
function peftRsLoraZip(): Uint8Array {
  const r = 4;
  const tensors: { name: string; shape: [number, number] }[] = [];
  for (let l = 0; l < 3; l++) {
    tensors.push({ name: `base_model.model.model.layers.${l}.mlp.down_proj.lora_A.weight`, shape: [r, 256] });
    tensors.push({ name: `base_model.model.model.layers.${l}.mlp.down_proj.lora_B.weight`, shape: [96, r] });
  }
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape[0] * t.shape[1] * 4;
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const file = new Uint8Array(8 + json.length + offset);
  new DataView(file.buffer).setBigUint64(0, BigInt(json.length), true);
  file.set(json, 8);
  // Small values, so the adapter changes the model a little: 0.01 everywhere.
  file.set(new Uint8Array(new Float32Array(offset / 4).fill(0.01).buffer), 8 + json.length);
  const config = { peft_type: 'LORA', base_model_name_or_path: 'tiny-peft-base', r, lora_alpha: 8, use_rslora: true, lora_dropout: 0, target_modules: ['down_proj'], bias: 'none' };
  return zipSync({ 'adapter_config.json': new TextEncoder().encode(JSON.stringify(config)), 'adapter_model.safetensors': file });
}

test('the newcomer journey at 1,400 px and at 390 px', async ({ page }, testInfo) => {
  await page.setViewportSize(WIDE);
  await openApp(page, '?batch=2&steps=24&ckpt=0&routing=8&lr=0.002&seed=7&maxnew=4&delta=0.1');

  // 8. The sidebar names the parts and jumps to them.
  const nav = page.getByTestId('section-nav');
  await expect(nav.getByRole('link')).toHaveText(['Data', 'Train', 'Routing', 'Compare', 'Chat', 'Runs']);
  await page.getByTestId('nav-compare').click();
  await expect(page.getByTestId('compare-panel')).toBeInViewport();

  // 6. The comparison shows the settings it takes from the Training panel, editable.
  await expect(page.getByTestId('compare-setting-lbcDelta')).toHaveValue('0.1');
  await page.getByTestId('compare-setting-lbcDelta').fill('0.3');
  await expect(page.getByTestId('setting-lbcDelta')).toHaveValue('0.3');

  // 1. The constraint's direction and importance are Training settings (and go into the link).
  await page.getByTestId('nav-train').click();
  await expect(page.getByTestId('setting-lbcDirection')).toBeVisible();
  await expect(page.getByTestId('setting-lbcImportance')).toHaveValue('mean');
  await page.getByTestId('setting-lbcDirection').selectOption('own-group');
  await expect(page).toHaveURL(/lbcdir=own-group/);

  // 9. A bad CSV row: its problem said once; one record kept, in the singular.
  const csv = testInfo.outputPath('bad.csv');
  await writeFile(csv, 'instruction,output\ng,h\n"a"b,c\n');
  await page.getByTestId('data-drop-input').setInputFiles(csv);
  await expect(page.getByTestId('dataset-counts')).toHaveText(/^1 record kept, 1 rejected/);
  const problem = (await page.getByTestId('dataset-error').first().textContent()) ?? '';
  expect(problem.split('Trailing quote on quoted field is malformed')).toHaveLength(2);

  await loadDemo(page, testInfo);
  await expect(page.getByTestId('dataset-counts')).toHaveText(/^48 records kept/);
  await page.getByTestId('probe-drop-input').setInputFiles(await writeProbeFile(testInfo));
  await expect(page.getByTestId('probe-data')).toHaveAttribute('data-count', '24');

  // 8. While the run holds the model (paused here, so the check does not race the run), its curves come first.
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'running');
  await page.getByTestId('pause-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'paused');
  const charts = await page.getByTestId('charts-panel').boundingBox();
  const data = await page.getByTestId('data-panel').boundingBox();
  expect(charts!.y, 'the curves above the data panel during a run').toBeLessThan(data!.y);
  await page.getByTestId('resume-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done', { timeout: 150_000 });
  const first = (await page.locator('[data-testid="run-row"][aria-current="true"]').getAttribute('data-run'))!;

  // 4. The probe's "after" is scored when the run ends, with no click.
  await expect(page.getByTestId('probe-accuracy-after')).toHaveText(/^\d+\.\d%$/);
  const firstLoglik = Number(await page.getByTestId('probe-loglik').getAttribute('data-after'));
  expect(Number.isFinite(firstLoglik)).toBe(true);

  // 9. Every heatmap's one-line reading: the type's own group, its share and the target.
  const readings = page.locator('[data-testid^="heatmap-reading-"]');
  await expect(readings.filter({ hasText: 'world knowledge' })).toHaveText(/^world knowledge → experts 0-3: \d+%, target \d+%$/);
  for (const text of await readings.allTextContents()) expect(text).toMatch(/^[a-z ]+ → experts 4-7: \d+%, target \d+%$|^world knowledge/);

  // 8. A chart's tooltip goes when the pointer leaves.
  const ce = page.getByTestId('chart-ce').locator('.recharts-wrapper');
  await ce.scrollIntoViewIfNeeded();
  const box = (await ce.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2, { steps: 4 });
  await expect(page.getByTestId('chart-ce').locator('.recharts-tooltip-wrapper')).toBeVisible();
  await page.mouse.move(box.x + box.width / 2, box.y - 150);
  await expect(page.getByTestId('chart-ce').locator('.recharts-tooltip-wrapper')).toBeHidden();

  // A second run with another seed: another model (a third of the steps: only its seed matters here).
  await page.getByTestId('setting-seed').fill('8');
  await page.getByTestId('setting-steps').fill('8');
  const second = await trainToEnd(page, first);
  expect(second).not.toBe(first);
  await expect(page.getByTestId('probe-model')).toHaveAttribute('data-run', second);
  await expect.poll(async () => Number(await page.getByTestId('probe-loglik').getAttribute('data-after'))).not.toBe(firstLoglik);

  // 7. The Open of the run on screen is unavailable and says why, on focus too.
  const secondRow = page.locator(`[data-testid="run-row"][data-run="${second}"]`);
  await secondRow.getByTestId('run-open').focus();
  await expect(secondRow.getByTestId('run-open')).toBeFocused();
  await expect(secondRow.getByTestId('run-open')).toHaveAttribute('aria-disabled', 'true');
  await expect(secondRow.getByTestId('run-open')).toHaveAccessibleDescription('This run is on screen');

  // 2. Open the first run: its adapter is loaded, and the probe scores it (the same numbers as at its end).
  const firstRow = page.locator(`[data-testid="run-row"][data-run="${first}"]`);
  await firstRow.getByTestId('run-open').click();
  await expect(page.getByTestId('probe-model')).toHaveAttribute('data-run', first);
  await expect(page.getByTestId('adapter-state')).toContainText('Run 1:');
  await page.getByTestId('probe-after').click();
  await expect(page.getByTestId('probe-after')).toHaveText('Probe the trained model');
  await expect.poll(async () => Number(await page.getByTestId('probe-loglik').getAttribute('data-after'))).toBeCloseTo(firstLoglik, 5);

  // 8. The runs table fits the panel at 1,400 px.
  const fits = await page.getByTestId('runs-table').evaluate((t) => t.scrollWidth <= (t.parentElement?.clientWidth ?? 0) + 1);
  expect(fits, 'the runs table is not cut off at 1,400 px').toBe(true);
  await page.screenshot({ path: testInfo.outputPath('newcomer-1400.png'), fullPage: true });

  // 8. At 390 px: the sidebar is a strip of tabs, every chart label whole, nothing wider than the screen, run names stay words.
  await page.setViewportSize(PHONE);
  await expect(page.getByTestId('nav-runs')).toBeVisible();
  const tick = page.getByTestId('group-share-chart').locator('svg text').filter({ hasText: /^world/ });
  await expect(tick).toHaveText(/^world\s*knowledge\s*\(\d+\s*tokens\)$/);
  await expectNoOverflow(page, '.panel, .runbar, .app-header, .sidebar', 'the playground at 390 px');
  await page.getByTestId('nav-runs').click();
  await expect(page.getByTestId('runs-panel')).toBeInViewport();
  const nameBox = await page.locator(`[data-testid="run-row"][data-run="${first}"] .run-name`).boundingBox();
  expect(nameBox!.width, 'a run name is not wrapped letter by letter').toBeGreaterThan(100);
  await page.screenshot({ path: testInfo.outputPath('newcomer-390.png'), fullPage: true });
});

test('an imported adapter is named by its file and base model, says how an rsLoRA alpha scales, and says what it changed in the settings', async ({ page }) => {
  await page.setViewportSize(WIDE);
  await openApp(page, '?rank=8');
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  const peftPath = test.info().outputPath('my-peft-rslora.zip');
  await writeFile(peftPath, peftRsLoraZip());
  await page.getByTestId('adapter-drop-input').setInputFiles(peftPath);
  await expect(page.getByTestId('adapter-state')).toHaveAttribute('data-origin', 'imported');
  // 7. PEFT's lora_alpha 8 with use_rslora at rank 4 is held as alpha 16, and the panel says why.
  await expect(page.getByTestId('adapter-state')).toContainText('alpha 16');
  await expect(page.getByTestId('adapter-note')).toContainText("PEFT's lora_alpha 8 with use_rslora at rank 4 scales the update by lora_alpha / √r = 4; held here as alpha 16");
  // 6. The import says what it changed in the Training settings.
  await expect(page.getByTestId('import-settings-note')).toContainText('Mode loramoe → lora, Rank (r) 8 → 4, Alpha 32 → 16');
  await expect(page.getByTestId('setting-rank')).toHaveValue('4');
  // 7. Its name in the library: the zip's and the base model's.
  await expect(page.locator('[data-testid="run-row"][data-origin="imported"] .run-name')).toContainText('my-peft-rslora (tiny-peft-base)');
  await expect(page.locator('.run-name', { hasText: 'Imported:' })).toHaveCount(0);
});
