/**
 * Expert knockout on the page: after a short LoRAMoE run on the demo, the knowledge probe of the
 * trained model is run with every group on, then with the world-knowledge group switched off; the
 * second result is recorded with its mask and scores differently. The chat answers with a group off
 * and says so.
 */
import { expect, test } from '@playwright/test';
import { openApp, writeTrainingFile } from './app';

test('expert group switches: the probe and the chat with the world-knowledge group off', async ({ page }, testInfo) => {
  await openApp(page, '?batch=4&steps=6&ckpt=6&routing=3&lr=0.02&maxnew=4');
  await page.getByTestId('load-demo').click();
  await expect(page.getByTestId('backbone-loaded')).toBeVisible();
  await page.getByTestId('data-drop-input').setInputFiles(await writeTrainingFile(testInfo));
  await expect(page.getByTestId('dataset-counts')).toHaveAttribute('data-good', '48');
  await page.getByTestId('start-run').click();
  await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done', { timeout: 120_000 });

  await page.getByTestId('use-demo-probe').click();
  await expect(page.getByTestId('probe-data')).toHaveAttribute('data-count', /\d+/);
  // The official grouping: world knowledge (experts 0-3) and the downstream tasks (4-7), both on.
  const wk = page.getByTestId('probe-experts-group-0');
  await expect(page.getByTestId('probe-experts-switches')).toContainText('world knowledge (0-3)');
  await expect(wk).toBeChecked();
  await page.getByTestId('probe-after').click();
  const after = page.getByTestId('probe-accuracy-after');
  await expect(after).not.toHaveText('not run');
  await expect(after).toHaveAttribute('data-mask', '');
  const allOn = await page.getByTestId('probe-loglik').textContent();

  await wk.uncheck();
  // The last group on cannot be switched off too.
  await expect(page.getByTestId('probe-experts-group-1')).toBeDisabled();
  await page.getByTestId('probe-after').click();
  await expect(after).toHaveAttribute('data-mask', '0,1,2,3');
  await expect(after).toContainText('experts 0-3 off');
  const wkOff = await page.getByTestId('probe-loglik').textContent();
  console.log(`[e2e] probe mean log p(gold): all groups on ${allOn}; world knowledge off ${wkOff}`);
  expect(wkOff).not.toBe(allOn);

  await page.getByTestId('chat-experts-group-0').uncheck();
  await page.getByTestId('chat-prompt').fill('what is the capital of france ?');
  await page.getByTestId('chat-send').click();
  await expect(page.getByTestId('chat-status')).toHaveAttribute('data-finish', /stop|length|capacity/);
  await expect(page.getByTestId('chat-status')).toHaveAttribute('data-mask', '0,1,2,3');
  await expect(page.getByTestId('chat-status')).toContainText('experts 0-3 off');
  // Every token's routing went to the task group: the world-knowledge group had no weight.
  await expect(page.getByTestId('chat-token-0')).toHaveAttribute('data-group', '1');
});
