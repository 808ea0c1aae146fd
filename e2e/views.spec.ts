import { readFile } from 'node:fs/promises';
import { expect, test } from '@playwright/test';

/**
 * The view components on the `?views-demo` page (made-up data, no GPU needed): each renders, the
 * heatmap cells carry their values, the CSV and PNG exports download, and strings from data are
 * shown as text, never parsed as HTML.
 */
test('the views render their sample data, export CSV and PNG, and show HTML in data as text', async ({ page }, testInfo) => {
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto('/?views-demo');
  await expect(page.getByTestId('views-demo')).toBeVisible();

  // Loss charts: five small multiples, LBC off for the plain LoRA run, downsampled to about 1000 points.
  const loss = page.getByTestId('demo-loss').getByTestId('loss-charts');
  for (const id of ['chart-ce', 'chart-lbc', 'chart-lr', 'chart-grad-norm', 'chart-throughput']) {
    await expect(loss.getByTestId(id)).toBeVisible();
    await expect(loss.getByTestId(id).locator('.recharts-line path.recharts-curve')).toBeVisible();
  }
  await expect(loss).toHaveAttribute('data-points', '1500');
  expect(Number(await loss.getAttribute('data-drawn'))).toBeLessThanOrEqual(1001);
  await expect(loss.getByTestId('chart-lbc-off')).toHaveCount(0);
  const lora = page.getByTestId('demo-loss-lora').getByTestId('loss-charts');
  await expect(lora.getByTestId('chart-lbc')).toContainText('LBC off');

  // Routing heatmap: one grid per type, cells with values and a title, the type without tokens says so.
  const heatmap = page.getByTestId('demo-heatmap').getByTestId('routing-heatmap');
  await expect(heatmap).toBeVisible();
  await expect(heatmap.getByTestId('heatmap-0')).toBeVisible();
  await expect(heatmap.getByTestId('heatmap-1')).toBeVisible();
  await expect(heatmap.getByTestId('heatmap-2')).toContainText('no tokens yet');
  await expect(heatmap.getByTestId('heatmap-0').locator('[data-testid^="cell-"]')).toHaveCount(12 * 8);
  const cell = heatmap.getByTestId('cell-1-3-2');
  const value = Number(await cell.getAttribute('data-value'));
  expect(value).toBeGreaterThan(0);
  expect(value).toBeLessThan(1);
  await expect(cell).toHaveAttribute('title', `world knowledge · layer 3 · gate_proj · expert 2 (world knowledge): ${value.toFixed(4)}`);
  await cell.hover();
  await expect(heatmap.getByTestId('heatmap-tooltip')).toContainText(value.toFixed(4));
  // Switching the projection redraws the cells from that projection's weights.
  await heatmap.getByTestId('heatmap-projection').selectOption('down_proj');
  await expect(cell).toHaveAttribute('title', /down_proj/);
  expect(Number(await cell.getAttribute('data-value'))).not.toBe(value);
  const downValue = await cell.getAttribute('data-value');

  // CSV export: header, one row per type, layer, projection and expert, values matching the cells.
  const [csvDownload] = await Promise.all([page.waitForEvent('download'), heatmap.getByTestId('heatmap-download-csv').click()]);
  expect(csvDownload.suggestedFilename()).toBe('routing.csv');
  const csv = await readFile(await csvDownload.path(), 'utf8');
  const lines = csv.trim().split('\n');
  expect(lines[0]).toBe('type,layer,projection,expert,group,mean_weight');
  expect(lines).toHaveLength(1 + 3 * 12 * 3 * 8);
  expect(lines).toContain(`world knowledge,3,down_proj,2,world knowledge,${downValue}`);
  expect(lines).toContain('held-out (none yet),0,gate_proj,0,world knowledge,');

  // PNG export: a real PNG file.
  const [pngDownload] = await Promise.all([page.waitForEvent('download'), heatmap.getByTestId('heatmap-download-png').click()]);
  expect(pngDownload.suggestedFilename()).toBe('routing-down_proj.png');
  const png = await readFile(await pngDownload.path());
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(png.length).toBeGreaterThan(1000);
  await testInfo.attach('routing-heatmap.png', { body: png, contentType: 'image/png' });

  // Group shares: chart and table, world knowledge routed mostly to its own group.
  const share = page.getByTestId('demo-group-share').getByTestId('group-share-chart');
  await expect(share).toBeVisible();
  // Two groups for each of the two types with tokens, and beside them each type's own-group share
  // at the balancing constraint's optimum (the demo page's official direction, delta 0.1: 45%).
  await expect(share.locator('.recharts-bar-rectangle')).toHaveCount(2 * 2 + 2);
  const table = share.getByTestId('group-share-table');
  await expect(table).toContainText('world knowledge');
  const wkOwn = Number(await table.getByTestId('group-share-1-1').getAttribute('data-value'));
  const wkOther = Number(await table.getByTestId('group-share-1-0').getAttribute('data-value'));
  expect(wkOwn).toBeGreaterThan(0.5);
  expect(wkOwn + wkOther).toBeCloseTo(1, 6);
  expect(Number(await table.getByTestId('group-share-target-1').getAttribute('data-value'))).toBeCloseTo(0.45, 9);

  // Probe: accuracies, rows, "changed only" filter.
  const probe = page.getByTestId('demo-probe').getByTestId('probe-view');
  await expect(probe.getByTestId('probe-accuracy-before')).toHaveText('50.0%');
  await expect(probe.getByTestId('probe-accuracy-after')).toHaveText('66.7%');
  await expect(probe.locator('[data-testid^="probe-row-"]')).toHaveCount(12);
  await probe.getByTestId('probe-changed-only').check();
  await expect(probe.locator('[data-testid^="probe-row-"]')).toHaveCount(4);
  await expect(probe.locator('[data-testid^="probe-row-"][data-changed="false"]')).toHaveCount(0);
  await probe.getByTestId('probe-changed-only').uncheck();

  // HTML in data is text: the payload is visible verbatim and no element was created from it.
  const payload = '<img src=x onerror=alert(1)>';
  await expect(probe.getByTestId('probe-row-3')).toContainText(`What does ${payload} do?`);
  await expect(page.locator('img')).toHaveCount(0);
  const chat = page.getByTestId('demo-chat').getByTestId('chat-transcript');
  await expect(chat).toContainText('<b>not bold</b>');
  await expect(chat.locator('b')).toHaveCount(0);
  // The end-of-sequence token ends the answer but is not shown as text.
  await expect(chat.locator('.chat-text')).toHaveText(/stay text\.$/);
  await expect(chat).not.toContainText('</s>');

  // Chat: tokens tinted by their dominant group, plain without routing, per-layer detail on hover and focus.
  await expect(chat.getByTestId('chat-token-0')).toHaveAttribute('data-group', 'none');
  await expect(chat.getByTestId('chat-token-7')).toHaveAttribute('data-group', '1');
  await expect(chat.getByTestId('chat-token-13')).toHaveAttribute('data-group', '0');
  await chat.getByTestId('chat-token-7').hover();
  await expect(chat.getByTestId('chat-token-detail')).toHaveAttribute('data-index', '7');
  await expect(chat.getByTestId('chat-token-layers')).toContainText('gate_proj');
  await page.mouse.move(0, 0);
  await chat.getByTestId('chat-token-3').focus();
  await page.keyboard.press('ArrowRight');
  await expect(chat.getByTestId('chat-token-4')).toBeFocused();
  await expect(chat.getByTestId('chat-token-detail')).toHaveAttribute('data-index', '4');

  // Empty states: every view renders with no data and says so.
  const empty = page.getByTestId('demo-empty');
  await expect(empty.getByTestId('loss-charts')).toContainText('No training steps yet');
  await expect(empty.getByTestId('chart-ce')).toBeVisible();
  await expect(empty.getByTestId('heatmap-0')).toContainText('no tokens yet');
  await expect(empty.getByTestId('heatmap-1')).toContainText('no tokens yet');
  await expect(empty.getByTestId('group-share-table')).toBeVisible();
  await expect(empty.getByTestId('probe-view')).toContainText('not run yet');
  await expect(empty.getByTestId('chat-transcript')).toContainText('No generated text yet');

  await page.screenshot({ path: testInfo.outputPath('views-demo.png'), fullPage: true });
  expect(dialogs).toEqual([]);
  expect(pageErrors).toEqual([]);
});
