import { expect, test } from '@playwright/test';

test('the page finds a WebGPU adapter and a kernel run on it matches the CPU reference', async ({ page }, testInfo) => {
  page.on('console', (msg) => console.log(`[page] ${msg.text()}`));
  await page.goto('/');
  // No adapter is a failure: the unavailable page must not appear.
  await expect(page.getByTestId('gpu-panel')).toBeVisible();
  await expect(page.getByTestId('webgpu-unavailable')).toHaveCount(0);
  const adapter = await page.getByTestId('adapter-name').textContent();
  console.log(`[e2e] adapter: ${adapter}`);
  const check = page.getByTestId('kernel-check');
  await expect(check).toBeVisible();
  console.log(`[e2e] ${await check.textContent()}`);
  await expect(check).toHaveAttribute('data-passed', 'true');
  await page.screenshot({ path: testInfo.outputPath('gpu-panel.png'), fullPage: true });
});

test('without WebGPU the page says so and names the browsers that provide it', async ({ browser }) => {
  const context = await browser.newContext();
  // Simulate a browser without WebGPU before any page script runs.
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    delete (Navigator.prototype as { gpu?: unknown }).gpu;
  });
  const page = await context.newPage();
  await page.goto('/');
  const box = page.getByTestId('webgpu-unavailable');
  await expect(box).toBeVisible();
  await expect(box).toContainText('Chrome');
  await expect(box).toContainText('enable-unsafe-webgpu');
  await context.close();
});
