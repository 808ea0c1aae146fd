/**
 * Runs a benchmark page in headless Chromium on the machine's WebGPU adapter: starts a Vite dev
 * server on the repository, opens `html` with `query`, forwards the page's console lines that
 * start with `[prefix]` (and its errors), and returns what the page stores in `window[global]`.
 */
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface PageRun {
  /** Path of the page under the repository root, e.g. 'tools/bench/step.html'. */
  html: string;
  query: string;
  /** The window property the page sets to its outcome when it is done. */
  global: string;
  /** Console lines with this prefix are forwarded to stderr. */
  prefix: string;
  /** Dependencies to pre-bundle before the page loads (a late discovery would reload it mid-run). */
  deps: string[];
}

/** A Vite dev server on the repository (its own dependency cache, so others may run beside it), listening; and its base URL. */
export async function startDevServer(cacheName: string, optimizeDeps: { entries?: string[]; include?: string[] } = {}): Promise<{ server: ViteDevServer; base: string }> {
  const server = await createServer({
    root: ROOT,
    configFile: fileURLToPath(new URL('../../vite.config.ts', import.meta.url)),
    logLevel: 'warn',
    clearScreen: false,
    cacheDir: `node_modules/.vite-${cacheName}`,
    optimizeDeps,
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false, watch: null },
  });
  await server.listen();
  const base = server.resolvedUrls?.local[0];
  if (!base) throw new Error('the Vite dev server reported no local URL');
  return { server, base };
}

/** Headless system Chromium with WebGPU on and nothing in the background (as playwright.config.ts). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

export async function runBenchPage<T>(r: PageRun): Promise<T> {
  const { server, base } = await startDevServer(`bench-${r.prefix}`, { entries: [r.html], include: r.deps });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on('console', (msg) => {
      if (msg.type() === 'error' || msg.text().startsWith(`[${r.prefix}]`)) console.error(`[page] ${msg.text()}`);
    });
    page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
    const url = `${base}${r.html}?${r.query}`;
    console.error(`[${r.prefix}] ${url}`);
    await page.goto(url);
    // No timeout: a full run on a software adapter takes many minutes.
    const handle = await page.waitForFunction((g) => (window as unknown as Record<string, unknown>)[g], r.global, { timeout: 0, polling: 1000 });
    return (await handle.jsonValue()) as T;
  } finally {
    await browser.close();
    await server.close();
  }
}
