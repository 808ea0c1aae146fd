/**
 * What the e2e specs share: opening the app (no adapter is a failure, not a skip), recording every
 * request, and a small training file from the demo data.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { type BrowserContext, expect, type Page, type TestInfo } from '@playwright/test';

/** A phone's screen. */
export const PHONE = { width: 390, height: 844 };

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

/**
 * Elements that stick out of their panel sideways (outside any box that scrolls or clips), and the
 * page's scroll width.
 */
export async function overflow(page: Page, panels: string): Promise<{ scrollWidth: number; outside: string[] }> {
  return page.evaluate((selector) => {
    const describe = (el: Element) => {
      const id = el.getAttribute('data-testid');
      const cls = typeof el.className === 'string' && el.className ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
      return `${el.tagName.toLowerCase()}${id ? `[data-testid=${id}]` : ''}${cls}`;
    };
    const outside: string[] = [];
    const reported = new Set<Element>();
    for (const panel of document.querySelectorAll(selector)) {
      const box = panel.getBoundingClientRect();
      for (const el of panel.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
        // Inside a box that scrolls or clips, or inside an element already reported: not reported again.
        let skip = false;
        for (let a = el.parentElement; a && a !== panel; a = a.parentElement) if (getComputedStyle(a).overflowX !== 'visible' || reported.has(a)) skip = true;
        if (skip) continue;
        if (r.left < box.left - 1 || r.right > box.right + 1) {
          reported.add(el);
          outside.push(`${describe(el)} in ${describe(panel)}: ${Math.round(r.left)}-${Math.round(r.right)} px, the panel ${Math.round(box.left)}-${Math.round(box.right)} px`);
        }
      }
    }
    return { scrollWidth: document.documentElement.scrollWidth, outside };
  }, panels);
}

export async function expectNoOverflow(page: Page, panels: string, what: string): Promise<void> {
  const { scrollWidth, outside } = await overflow(page, panels);
  expect.soft(outside, `${what}: elements wider than their panel:\n${outside.join('\n')}`).toEqual([]);
  expect.soft(scrollWidth, `${what}: the page is wider than the screen`).toBeLessThanOrEqual(PHONE.width);
}

/** The first `n` held-out facts of the demo probe, as JSON Lines. */
export async function writeProbeFile(testInfo: TestInfo, n = 24): Promise<string> {
  const path = testInfo.outputPath('tiny-probe.jsonl');
  await writeFile(path, (await readFile('public/data/demo-probe.jsonl', 'utf8')).trim().split('\n').slice(0, n).join('\n') + '\n');
  return path;
}

/** A PNG's width and height in pixels (its IHDR chunk: bytes 16-23, big-endian). */
export function pngSize(bytes: Buffer): { width: number; height: number } {
  expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}
