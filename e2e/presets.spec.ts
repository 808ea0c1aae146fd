import { expect, test } from '@playwright/test';
import { openApp } from './app';

test('presets: the page opens on the default preset; picking one sets the form and the URL and loads its backbone and data; a run takes the whole width', async ({ page }) => {
  await openApp(page);
  const picker = page.getByTestId('preset-select');
  await expect(picker).toHaveValue('default');
  await expect(page.getByTestId('preset-summary')).toContainText('about a minute');
  await expect(page.getByTestId('setting-lbcDelta')).toHaveValue('0.5');

  // The official script's settings: the form and the link follow; the demo backbone and data load.
  await picker.selectOption('official');
  await expect(page.getByTestId('setting-lr')).toHaveValue('0.0002');
  await expect(page.getByTestId('setting-lbcDelta')).toHaveValue('0.1');
  await expect.poll(() => new URL(page.url()).searchParams.get('lr')).toBe('0.0002');
  await expect(page.getByTestId('backbone-loaded')).toHaveAttribute('data-name', 'loramoe-playground/demo');
  await expect(page.getByTestId('dataset-name')).toHaveText('demo-train.jsonl');

  // A changed setting makes the form the user's own.
  await page.getByTestId('setting-lr').fill('0.001');
  await expect(picker).toHaveValue('');
  await expect(page.getByTestId('preset-summary')).toContainText('your own');

  // Back to the default, then a two-step run of it: the run takes the preset's constraint.
  await picker.selectOption('default');
  await expect(page.getByTestId('setting-lr')).toHaveValue('0.005');
  await expect(page.getByTestId('setting-steps')).toHaveValue('80');
  await page.getByTestId('setting-steps').fill('2');
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done');
  await expect(page.getByTestId('constraint-direction')).toContainText("toward its own data type's expert group, to 75%");

  // While a run holds the model, its views take the whole width: the five curves in one row, the
  // locked settings below them.
  await page.getByTestId('setting-steps').fill('400');
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'running');
  await expect(page.locator('main.sections')).toHaveAttribute('data-running', 'true');
  const box = async (id: string) => (await page.getByTestId(id).first().boundingBox())!;
  expect((await box('chart-throughput')).y).toBe((await box('chart-ce')).y);
  const charts = await box('loss-charts');
  expect((await box('settings-panel')).y).toBeGreaterThan(charts.y + charts.height);
  await page.getByTestId('stop-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'stopped');
  await expect(page.locator('main.sections')).toHaveAttribute('data-running', 'false');
});
