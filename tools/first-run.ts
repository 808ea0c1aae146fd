/**
 * The first run as a newcomer meets it: the page at its defaults (the default preset) in headless
 * Chromium, Apply (loads the demo backbone and data), Train, and when the run is done the routing
 * panel's share table (measured on the held-out routing set, dropout off). Prints the wall time
 * from Train to done and each data type's share of router weight per expert group, and checks the
 * default preset's promise: every type at least 0.6 on its own group, and world knowledge's share
 * on the world-knowledge group at least 0.2 above each task type's.
 *
 *   npx vite-node tools/first-run.ts [--preset NAME] [--json FILE]
 *
 * Exit status 1 when the promise is not met (for the default preset).
 */
import { writeFile } from 'node:fs/promises';
import { launchChromium, startDevServer } from './bench/browser';

const arg = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);

async function main(): Promise<void> {
  const preset = arg('--preset') ?? 'default';
  const { server, base } = await startDevServer('first-run');
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
    await page.goto(base);
    await page.getByTestId('preset-select').selectOption(preset);
    await page.getByTestId('preset-apply').click();
    await page.getByTestId('backbone-loaded').waitFor({ timeout: 0 });
    await page.locator('[data-testid=dataset-name]', { hasText: 'demo-train.jsonl' }).waitFor({ timeout: 0 });
    await page.locator('[data-testid=start-run]:enabled').waitFor({ timeout: 0 });
    const t0 = Date.now();
    await page.getByTestId('start-run').click();
    await page.locator('[data-testid=run-bar][data-status=done]').waitFor({ timeout: 0 });
    const seconds = (Date.now() - t0) / 1000;
    await page.getByTestId('routing-view-routingSet').click();
    const rows = await page.getByTestId('group-share-table').locator('tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({
        type: tr.querySelector('th')?.textContent ?? '',
        shares: [...tr.querySelectorAll('td[data-testid^="group-share-"]')].filter((td) => !/tokens|target/.test(td.getAttribute('data-testid') ?? '')).map((td) => Number(td.getAttribute('data-value'))),
        own: [...tr.querySelectorAll('td[data-testid^="group-share-"]')].filter((td) => !/tokens|target/.test(td.getAttribute('data-testid') ?? '')).findIndex((td) => td.classList.contains('own-group')),
      })),
    );
    const typed = rows.filter((r) => r.own >= 0 && r.shares.every(Number.isFinite));
    const wk = typed.find((r) => r.type === 'world knowledge');
    const tasks = typed.filter((r) => r !== wk);
    const ownShares = typed.map((r) => ({ type: r.type, own: r.shares[r.own] }));
    const gaps = wk ? tasks.map((r) => ({ type: r.type, gap: wk.shares[wk.own] - r.shares[wk.own] })) : [];
    const met = wk !== undefined && ownShares.every((o) => o.own >= 0.6) && gaps.every((g) => g.gap >= 0.2);
    const out = { preset, seconds, adapter: await page.getByTestId('adapter-name').textContent(), ownShares, worldKnowledgeGroupGap: gaps, met };
    console.log(JSON.stringify(out, null, 1));
    const json = arg('--json');
    if (json) await writeFile(json, JSON.stringify(out, null, 1));
    if (preset === 'default' && !met) process.exitCode = 1;
  } finally {
    await browser.close();
    await server.close();
  }
}

await main();
