/**
 * What the e2e specs share: opening the app (no adapter is a failure, not a skip), recording every
 * request, and a small training file from the demo data.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { type BrowserContext, expect, type Page, type TestInfo } from '@playwright/test';

/** URLs that stay on the local preview server (or never leave the browser). */
export const LOCAL = /^(https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\/|data:|blob:)/;

/** Records every request of the context (page and workers). */
export function recordRequests(context: BrowserContext): string[] {
  const urls: string[] = [];
  context.on('request', (r) => urls.push(r.url()));
  return urls;
}

export async function openApp(page: Page, query = ''): Promise<void> {
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') console.log(`[page ${msg.type()}] ${msg.text()}`);
  });
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(`/${query}`);
  // No adapter is a failure, not a skip.
  await expect(page.getByTestId('gpu-panel')).toBeVisible();
  await expect(page.getByTestId('kernel-check')).toHaveAttribute('data-passed', 'true');
}

/**
 * 48 demo records alternating world knowledge and downstream tasks, as JSON Lines; with `badLine`,
 * a record without an answer is inserted as line 3.
 */
export async function writeTrainingFile(testInfo: TestInfo, opts: { badLine?: boolean } = {}): Promise<string> {
  const lines = (await readFile('public/data/demo-train.jsonl', 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string });
  const world = lines.filter((r) => r.type === 'world knowledge').slice(0, 24);
  const tasks = lines.filter((r) => r.type !== 'world knowledge').slice(0, 24);
  const records = world.flatMap((w, i) => [w, tasks[i]]).map((r) => JSON.stringify(r));
  if (opts.badLine) records.splice(2, 0, JSON.stringify({ instruction: 'a record without an answer', type: 'world knowledge' }));
  const path = testInfo.outputPath('tiny-train.jsonl');
  await writeFile(path, records.join('\n') + '\n');
  return path;
}
