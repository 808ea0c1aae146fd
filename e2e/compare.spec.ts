/**
 * The method comparison in the browser: a short comparison of the five methods on the demo
 * backbone, with a small probe, gets points on every method's curves, ends with the table, keeps
 * each method's run in the library, with the specialisation table (expert knockout), and exports the table as CSV and the charts as PNG. A second
 * comparison is cancelled while its first method trains.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { expect, type Page, test, type TestInfo } from '@playwright/test';
import { LOCAL, openApp, pngSize, recordRequests, writeTrainingFile } from './app';

const METHODS = ['full', 'lora', 'loramoe', 'lbc-official', 'lbc-own'];

/** The fields of one CSV line (quoted fields may hold commas and doubled quotes). */
function csvCells(line: string): string[] {
  const cells: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cur);
      cur = '';
    } else cur += ch;
  }
  cells.push(cur);
  return cells;
}

/** The page on the demo backbone with the tiny training file and the first `facts` held-out facts of the demo probe. */
async function openWithTinyData(page: Page, testInfo: TestInfo, facts: number): Promise<void> {
  await openApp(page, '?batch=2&maxlen=14&routing=3&ckpt=0&seed=5&delta=0.1');
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.getByTestId('data-drop-input').setInputFiles(await writeTrainingFile(testInfo));
  await expect(page.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
  const probePath = testInfo.outputPath('tiny-probe.jsonl');
  await writeFile(probePath, (await readFile('public/data/demo-probe.jsonl', 'utf8')).trim().split('\n').slice(0, facts).join('\n') + '\n');
  await page.getByTestId('probe-drop-input').setInputFiles(probePath);
  await expect(page.getByTestId('probe-data')).toHaveAttribute('data-count', String(facts));
}

test('a short comparison of the five methods plots every curve, ends with the table, and exports CSV and PNG', async ({ page, context }, testInfo) => {
  const requests = recordRequests(context);
  await page.setViewportSize({ width: 1400, height: 900 });
  await openWithTinyData(page, testInfo, 24);

  await page.getByTestId('compare-steps').fill('4');
  // The settings the methods take from the Training panel are shown here, editable.
  await expect(page.getByTestId('compare-setting-batch')).toHaveValue('2');
  await expect(page.getByTestId('compare-setting-seed')).toHaveValue('5');
  await expect(page.getByTestId('compare-setting-lbcDelta')).toHaveValue('0.1');
  await page.getByTestId('compare-start').click();
  await expect(page.getByTestId('compare-panel')).toHaveAttribute('data-status', 'running');
  await expect(page.getByTestId('compare-panel')).toHaveAttribute('data-status', 'done', { timeout: 170_000 });

  // Every method has its curve: step 0 and each of the 4 steps (scored every step at 4 steps).
  for (const m of METHODS) {
    const row = page.locator(`[data-testid="compare-method"][data-method="${m}"]`);
    await expect(row).toHaveAttribute('data-state', 'done');
    await expect(row).toHaveAttribute('data-points', '5');
  }
  await expect(page.getByTestId('comparison-probe-chart')).toHaveAttribute('data-points', '25');
  await expect(page.getByTestId('comparison-task-chart')).toHaveAttribute('data-points', '25');
  await expect(page.getByTestId('comparison-row')).toHaveCount(5);
  await expect(page.getByTestId('compare-progress')).toHaveAttribute('data-value', '1.000');
  // The specialisation table: each LoRAMoE variant scored with each expert group switched off.
  await expect(page.getByTestId('specialisation-row')).toHaveCount(3);
  expect(await page.getByTestId('specialisation-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-method')))).toEqual(['loramoe', 'lbc-official', 'lbc-own']);
  const knocked = await page.getByTestId('specialisation-probe').evaluateAll((cells) => cells.map((c) => [c.getAttribute('data-group'), Number(c.getAttribute('data-value'))] as const));
  expect(knocked.map(([g]) => g)).toEqual(['world knowledge', 'downstream tasks', 'world knowledge', 'downstream tasks', 'world knowledge', 'downstream tasks']);
  for (const [, v] of knocked) expect(v >= 0 && v <= 1).toBe(true);
  await page.getByTestId('compare-panel').screenshot({ path: testInfo.outputPath('comparison.png') });

  // At 1,400 px the two charts share the width, the legends sit above the plots, the table is not cut off.
  const view = (await page.getByTestId('comparison-view').boundingBox())!;
  for (const id of ['comparison-probe-chart', 'comparison-task-chart']) {
    const box = (await page.getByTestId(id).boundingBox())!;
    expect(box.width, `${id} takes half the width`).toBeGreaterThan(view.width * 0.45);
    const legend = (await page.getByTestId(`${id}-legend`).boundingBox())!;
    const plot = (await page.getByTestId(id).locator('.recharts-wrapper').boundingBox())!;
    expect(legend.y + legend.height, `${id}: the legend ends above the plot`).toBeLessThanOrEqual(plot.y + 1);
  }
  const tableFits = await page.getByTestId('comparison-table').evaluate((t) => t.scrollWidth <= (t.parentElement?.clientWidth ?? 0) + 1);
  expect(tableFits, 'the comparison table is not cut off at 1,400 px').toBe(true);
  // The tooltip leaves with the pointer.
  const plot = page.getByTestId('comparison-probe-chart').locator('.recharts-wrapper');
  await plot.scrollIntoViewIfNeeded();
  const pb = (await plot.boundingBox())!;
  await page.mouse.move(pb.x + pb.width / 2, pb.y + pb.height / 2, { steps: 4 });
  await expect(page.getByTestId('comparison-probe-chart').locator('.recharts-tooltip-wrapper')).toBeVisible();
  await page.mouse.move(pb.x + pb.width / 2, pb.y - 200);
  await expect(page.getByTestId('comparison-probe-chart').locator('.recharts-tooltip-wrapper')).toBeHidden();

  // Each method's run is an ordinary run of the library.
  await expect(page.locator('[data-testid="run-row"]', { hasText: 'Comparison 1:' })).toHaveCount(5);

  const [csv] = await Promise.all([page.waitForEvent('download'), page.getByTestId('compare-csv').click()]);
  const lines = (await readFile((await csv.path())!, 'utf8')).trim().split('\n');
  expect(lines[0]).toMatch(/^method,run,steps,probe before,probe after,probe log-likelihood after,/);
  expect(lines).toHaveLength(6);
  const header = csvCells(lines[0]);
  expect(lines.slice(1).map((l) => csvCells(l)[0])).toEqual(['full fine-tuning', 'LoRA', 'LoRAMoE, no LBC', 'LoRAMoE + LBC (official)', 'LoRAMoE + LBC (own-group)']);
  for (const [i, line] of lines.slice(1).entries()) {
    const cells = csvCells(line);
    expect(cells).toHaveLength(header.length);
    expect(cells[2]).toBe('4');
    const before = Number(cells[header.indexOf('probe before')]);
    const after = Number(cells[header.indexOf('probe after')]);
    expect(before, `method ${i}: probe before`).toBeGreaterThanOrEqual(0);
    expect(before).toBeLessThanOrEqual(1);
    expect(after).toBeGreaterThanOrEqual(0);
    expect(after).toBeLessThanOrEqual(1);
    expect(Number.isFinite(Number(cells[header.indexOf('probe log-likelihood after')]))).toBe(true);
  }
  // The same backbone before training: every method starts from the same probe score.
  expect(new Set(lines.slice(1).map((l) => csvCells(l)[header.indexOf('probe before')])).size).toBe(1);

  const [png] = await Promise.all([page.waitForEvent('download'), page.getByTestId('compare-png').click()]);
  // The chart itself (not a 14 px legend icon), drawn at twice its size on screen.
  const size = pngSize(await readFile((await png.path())!));
  expect(size.width).toBeGreaterThanOrEqual(2 * Math.floor((await page.getByTestId('comparison-probe-chart').locator('.recharts-wrapper').boundingBox())!.width));
  expect(size.height).toBeGreaterThan(400);

  // A second comparison, cancelled while its first method trains: that run stops and no other starts.
  await page.getByTestId('compare-steps').fill('400');
  await page.getByTestId('compare-start').click();
  const first = page.locator('[data-testid="compare-method"][data-method="full"]');
  await expect(first).toHaveAttribute('data-state', 'running');
  // Its run has started once its curve has the score before the first step.
  await expect(first).toHaveAttribute('data-points', /^[1-9]/, { timeout: 60_000 });
  await page.getByTestId('compare-cancel').click();
  await expect(page.getByTestId('compare-panel')).toHaveAttribute('data-status', 'cancelled', { timeout: 60_000 });
  await expect(page.locator('[data-testid="compare-method"][data-method="full"]')).toHaveAttribute('data-state', 'stopped');
  await expect(page.locator('[data-testid="compare-method"][data-method="lora"]')).toHaveAttribute('data-state', 'waiting');
  expect(requests.filter((u) => !LOCAL.test(u))).toEqual([]);
});

test('a seeded comparison: every method from two seeds, curves in bands, the table with intervals', async ({ page }, testInfo) => {
  await openWithTinyData(page, testInfo, 12);

  await page.getByTestId('compare-steps').fill('1');
  await page.getByTestId('compare-seeds').fill('2');
  await page.getByTestId('compare-start').click();
  await expect(page.getByTestId('compare-panel')).toHaveAttribute('data-status', 'done', { timeout: 170_000 });
  for (const m of METHODS) await expect(page.locator(`[data-testid="comparison-row"][data-method="${m}"]`)).toHaveAttribute('data-seeds', '2');
  // Seeds 5 and 6 of every method are runs of the library.
  await expect(page.locator('[data-testid="run-row"]', { hasText: '(seed 5)' })).toHaveCount(5);
  await expect(page.locator('[data-testid="run-row"]', { hasText: '(seed 6)' })).toHaveCount(5);
  // A band per method in each chart; the table's cells are mean ± half-width.
  await expect(page.getByTestId('comparison-probe-chart')).toHaveAttribute('data-bands', '5');
  await expect(page.getByTestId('comparison-task-chart')).toHaveAttribute('data-bands', '5');
  await expect(page.getByTestId('compare-panel')).toContainText('Seeds 5, 6');
  const cells = await page.getByTestId('comparison-probe-after').evaluateAll((els) => els.map((e) => [Number(e.getAttribute('data-value')), Number(e.getAttribute('data-half')), e.textContent ?? ''] as const));
  expect(cells).toHaveLength(5);
  for (const [mean, half, text] of cells) {
    expect(mean >= 0 && mean <= 1 && half >= 0).toBe(true);
    expect(text).toBe(`${(mean * 100).toFixed(1)}% ± ${(half * 100).toFixed(1)}`);
  }
  await expect(page.getByTestId('specialisation-row')).toHaveCount(3);
  // Knowledge kept against tasks learnt: a point per method, with its intervals' whiskers.
  const tradeoff = page.getByTestId('comparison-tradeoff-chart');
  await expect(tradeoff).toHaveAttribute('data-points', '5');
  await expect(tradeoff.locator('.recharts-scatter-symbol')).toHaveCount(5);
  await expect(tradeoff.locator('.recharts-errorBar').first()).toBeAttached();
  // Its axes stay at 0-100% however wide an interval is (two seeds).
  const ticks = (await tradeoff.locator('svg text').allTextContents()).filter((t) => /^-?\d+%$/.test(t)).map((t) => Number(t.slice(0, -1)));
  expect(ticks).toContain(100);
  expect(ticks.every((t) => t >= 0 && t <= 100)).toBe(true);
  // Every pair of the five methods, paired by seed, with the rule stated.
  await expect(page.getByTestId('difference-row')).toHaveCount(10);
  await expect(page.getByTestId('differences-table')).toContainText('paired t-test across seeds at the 5% level');
  await page.getByTestId('compare-panel').screenshot({ path: testInfo.outputPath('seeded-comparison.png') });
});
