import { defineConfig } from '@playwright/test';

/**
 * e2e tests drive Debian's system Chromium (Playwright's own browser download is not available on
 * these machines) with WebGPU enabled; without a GPU it runs on the bundled SwiftShader Vulkan driver.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const PORT = 4173;

export default defineConfig({
  testDir: 'e2e',
  timeout: 180_000,
  expect: { timeout: 60_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [['list']],
  outputDir: 'test-results',
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
    command: `VITE_VIEWS_DEMO=true npx vite build --logLevel warn && npx vite preview --host 127.0.0.1 --port ${PORT} --strictPort`,
    url: `http://127.0.0.1:${PORT}`,
    reuseExistingServer: false,
    timeout: 180_000,
  },
});
