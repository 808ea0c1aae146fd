/**
 * The GPU suite must fail, not skip, when there is no adapter. This runs one GPU test file in a
 * child process with the Vulkan driver hidden and checks that it fails with the explanation.
 */
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';

it('GPU tests fail loudly when the WebGPU driver is absent', () => {
  const res = spawnSync('npx', ['vitest', 'run', 'src/engine/kernels/matmul.test.ts', '--reporter=dot'], {
    env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/vk_icd.json' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const output = `${res.stdout}\n${res.stderr}`;
  expect(res.status, output.slice(-2000)).not.toBe(0);
  expect(output).toMatch(/No WebGPU adapter for the GPU tests/);
  expect(output).not.toMatch(/Tests\s+\d+ passed \(\d+\)/);
});
