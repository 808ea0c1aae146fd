/**
 * The built site (`npm run build`, dist/) served from a sub-path of a plain static host, as GitHub
 * Pages serves https://user.github.io/repo/: a minimal file server that knows nothing of the app and
 * sends no Content-Security-Policy header, so the policy in index.html's <meta> is the only one. The
 * page loads the demo backbone and data from there and trains a few steps; every request stays
 * under the sub-path and succeeds, and the policy blocks nothing.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import { expect, test } from '@playwright/test';

const DIST = resolve(process.env.E2E_DIST ?? 'dist');
const PREFIX = '/some/deep/sub-path/';
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Serves DIST under PREFIX only; everything else is a 404, as on a host with other sites beside. */
function staticHost(): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      if (!path.startsWith(PREFIX)) {
        res.writeHead(404).end('not under the sub-path');
        return;
      }
      let file = normalize(join(DIST, path.slice(PREFIX.length)));
      if (!file.startsWith(DIST)) {
        res.writeHead(403).end();
        return;
      }
      try {
        if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
        await stat(file);
      } catch {
        res.writeHead(404).end('no such file');
        return;
      }
      res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
      createReadStream(file).pipe(res);
    })();
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

test('the built site runs from a sub-path of a plain static host, with its CSP from index.html', async ({ page }) => {
  const server = await staticHost();
  try {
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const failed: string[] = [];
    const outside: string[] = [];
    page.context().on('response', (r) => {
      if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
    });
    page.context().on('request', (r) => {
      if (r.url().startsWith(origin) && !new URL(r.url()).pathname.startsWith(PREFIX)) outside.push(r.url());
    });
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(`${origin}${PREFIX}?batch=2&steps=3&routing=1&maxlen=32`);
    expect(await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content')).toContain("script-src 'self'");
    await expect(page.getByTestId('kernel-check')).toHaveAttribute('data-passed', 'true');
    await page.getByTestId('load-demo').click();
    await expect(page.getByTestId('backbone-loaded')).toHaveAttribute('data-name', 'loramoe-playground/demo');
    await page.getByTestId('use-demo-data').click();
    await expect(page.getByTestId('dataset-counts')).toHaveAttribute('data-good', /^[1-9]\d*$/);
    // With a backbone and data loaded, the run's kernels compile ahead of Train.
    await expect(page.getByTestId('warmup')).toHaveAttribute('data-pipelines', /^[1-9]\d*$/);
    await page.getByTestId('start-run').click();
    await expect(page.getByTestId('run-bar')).toHaveAttribute('data-status', 'done', { timeout: 150_000 });
    await expect(page.getByTestId('run-step')).toHaveAttribute('data-value', '3');
    expect(failed).toEqual([]);
    expect(outside).toEqual([]);
    expect(violations).toEqual([]);
  } finally {
    await new Promise((ok) => server.close(ok));
  }
});
