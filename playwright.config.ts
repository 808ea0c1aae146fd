import { defineConfig } from '@playwright/test';

/**
 * e2e tests drive Debian's system Chromium (Playwright's own browser download is not available on
 * these machines) with WebGPU enabled; without a GPU it runs on the bundled SwiftShader Vulkan driver.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// E2E_PORT and E2E_DIST let two test runs on one machine (two checkouts, or two people) use their own
// server and build folder.
const PORT = Number(process.env.E2E_PORT ?? 4173);
const DIST = process.env.E2E_DIST ?? 'dist';

export default defineConfig({
  testDir: 'e2e',
  timeout: 180_000,
  expect: { timeout: 60_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [['list']],
  outputDir: process.env.E2E_DIST ? `test-results-${DIST}` : 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: CHROMIUM,
      args: [
        '--enable-unsafe-webgpu',
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
  webServer: {
    // VITE_VIEWS_DEMO: the build includes the `?views-demo` page that e2e/views.spec.ts drives (a
    // shipped build, `npm run build`, leaves it and its made-up data out; see src/main.tsx).
    command: `VITE_VIEWS_DEMO=true npx vite build --logLevel warn --outDir ${DIST} && npx vite preview --outDir ${DIST} --host 127.0.0.1 --port ${PORT} --strictPort`,
    url: `http://127.0.0.1:${PORT}`,
    reuseExistingServer: false,
    timeout: 180_000,
  },
});
