/**
 * Accessibility and narrow screens:
 *
 * 1. axe-core on every view with sample data (`?views-demo`: loss charts, routing heatmaps, group
 *    shares, probe, chat) and on the playground before and after a two-step run on the demo
 *    backbone: no serious or critical violation.
 * 2. At phone width (390 px) nothing is wider than the screen: the page does not scroll sideways and
 *    no element sticks out of its panel (what may be wider sits in a box that scrolls).
 */
import AxeBuilder from '@axe-core/playwright';
import { expect, type Page, test } from '@playwright/test';
import { expectNoOverflow, openApp, PHONE, writeTrainingFile } from './app';

/** axe's serious and critical violations on the page: one entry per rule, with the first few elements. */
async function seriousViolations(page: Page): Promise<string[]> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => {
      const nodes = v.nodes.slice(0, 3).map((n) => `    at ${n.target.join(' ')}: ${n.html.slice(0, 140)}\n      ${n.failureSummary?.replace(/\s*\n\s*/g, ' ') ?? ''}`);
      const more = v.nodes.length > 3 ? `\n    ... and ${v.nodes.length - 3} more` : '';
      return `${v.impact} ${v.id} (${v.nodes.length} element${v.nodes.length === 1 ? '' : 's'}): ${v.help} (${v.helpUrl})\n${nodes.join('\n')}${more}`;
    });
}

async function expectAccessible(page: Page, what: string): Promise<void> {
  const found = await seriousViolations(page);
  if (found.length > 0) console.log(`[axe] ${what}:\n${found.join('\n')}`);
  expect.soft(found, `${what}: serious or critical axe violations:\n${found.join('\n')}`).toEqual([]);
}

test('every view with sample data: no serious axe violation, nothing wider than a phone screen', async ({ page }, testInfo) => {
  await page.goto('/?views-demo');
  await expect(page.getByTestId('views-demo')).toBeVisible();
  await expect(page.getByTestId('demo-loss').locator('.recharts-line').first()).toBeVisible();
  await expectAccessible(page, 'views demo');

  await page.setViewportSize(PHONE);
  await expect(page.getByTestId('demo-group-share').locator('.recharts-bar-rectangle').first()).toBeVisible();
  for (const id of ['demo-loss', 'demo-heatmap', 'demo-group-share', 'demo-probe', 'demo-chat']) await page.getByTestId(id).screenshot({ path: testInfo.outputPath(`${id}-390.png`) });
  await expectNoOverflow(page, '.panel, .app-header', 'views demo at 390 px');
  await expectAccessible(page, 'views demo at 390 px');
});

test('the playground before and after a short run: no serious axe violation, nothing wider than a phone screen', async ({ page }, testInfo) => {
  await openApp(page, '?batch=2&steps=2&ckpt=2&routing=1&maxnew=4');
  await expectAccessible(page, 'the playground on opening');
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: testInfo.outputPath('opening-390.png') });
  await expectNoOverflow(page, '.panel, .runbar, .app-header', 'the playground on opening at 390 px');
  await page.setViewportSize({ width: 1280, height: 900 });

  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.getByTestId('data-drop-input').setInputFiles(await writeTrainingFile(testInfo));
  await expect(page.getByTestId('dataset-name')).toHaveText('tiny-train.jsonl');
  await page.getByTestId('dataset-info').locator('details summary').first().click();
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done');
  await expect(page.getByTestId('chart-ce').locator('.recharts-line')).toBeVisible();
  await expect(page.getByTestId('group-share-chart')).toBeVisible();
  await expectAccessible(page, 'the playground after a run');

  await page.setViewportSize(PHONE);
  await expect(page.getByTestId('run-status')).toBeVisible();
  for (const id of ['run-bar', 'loss-charts', 'routing-panel', 'data-panel']) await page.getByTestId(id).screenshot({ path: testInfo.outputPath(`${id}-390.png`) });
  await expectNoOverflow(page, '.panel, .runbar, .app-header', 'the playground at 390 px');
  // The run bar's status stays on one line (no word per line).
  const pill = await page.getByTestId('run-status').boundingBox();
  expect(pill?.height ?? 0).toBeLessThan(30);
});
