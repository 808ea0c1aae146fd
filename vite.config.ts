/// <reference types="vitest/config" />
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { ISOLATED_TESTS } from './src/test/isolation';

// Chromium's SwiftShader Vulkan driver: the software adapter the Node tests run on (see README).
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** The Content-Security-Policy written once, in index.html's <meta http-equiv>. */
function indexHtmlCsp(): string {
  const html = readFileSync(fileURLToPath(new URL('./index.html', import.meta.url)), 'utf8');
  const m = /<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html);
  if (!m) throw new Error('index.html has no Content-Security-Policy <meta>');
  return m[1];
}

const CSP = indexHtmlCsp();

/**
 * The dev server only (`npm start`, `vite`): React Fast Refresh injects an inline preamble script
 * and Vite injects CSS as <style> elements, so the policy served by the dev server allows inline
 * scripts and styles. `vite build` and `vite preview` keep the strict policy.
 */
function devServerCsp(): Plugin {
  const relaxed = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");
  return { name: 'loramoe:dev-csp', apply: 'serve', transformIndexHtml: (html) => html.replace(CSP, relaxed) };
}

export default defineConfig({
  // Relative URLs in the build: the site works from any sub-path of any static host (GitHub Pages:
  // https://user.github.io/repo/), with no base to configure. The CSP travels in index.html's <meta>.
  base: './',
  plugins: [react(), devServerCsp()],
  // `vite preview` (the e2e tests' server): the same policy as a header, so it also covers the
  // worker script's response; frame-ancestors only works as a header.
  preview: {
    headers: {
      'Content-Security-Policy': `${CSP}; frame-ancestors 'none'`,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    },
  },
  test: {
    // A WebGPU error during a GPU test fails the test (src/test/gpu-errors.ts).
    setupFiles: ['src/test/setup.ts'],
    env: { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD },
    // SwiftShader runs compute on the CPU: GPU tests are slow, and two workers on two cores are enough.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
    projects: [
      // Test files that change what the whole process sees (the IndexedDB global, the zustand
      // stores, the IndexedDB connection, a stubbed fetch) get a fresh module graph each
      // (src/test/isolation.ts lists them; its test checks the list).
      { extends: true, test: { name: 'isolated', include: ISOLATED_TESTS } },
      // The rest share one module graph per worker: one WebGPU device and one pipeline cache for
      // all of a worker's files, instead of a new process, device and compiled pipelines per file
      // (on SwiftShader a pipeline compiles in 0.1-20 s; sharing saves about a seventh of the suite's time).
      { extends: true, test: { name: 'shared', include: ['src/**/*.test.ts'], exclude: ISOLATED_TESTS, isolate: false } },
    ],
  },
});
