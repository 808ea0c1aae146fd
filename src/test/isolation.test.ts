import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROCESS_WIDE, runsIsolated } from './isolation';

/** Every test file under src, as a path from the repository root. */
function testFiles(): string[] {
  return (readdirSync('src', { recursive: true }) as string[]).filter((p) => p.endsWith('.test.ts')).map((p) => `src/${p.replaceAll('\\', '/')}`);
}

describe('test isolation', () => {
  it('every test file that changes process-wide state runs isolated', () => {
    const files = testFiles();
    expect(files.length).toBeGreaterThan(50);
    const changing = files.filter((f) => PROCESS_WIDE.test(readFileSync(f, 'utf8')));
    // The marker finds the files it was written for (a regex that matches nothing checks nothing).
    expect(changing).toContain('src/cli/hub-data.test.ts');
    expect(changing).toContain('src/store/worker-events.test.ts');
    expect(changing.filter((f) => !runsIsolated(f))).toEqual([]);
  });

  it('the shared files are the rest: the GPU tests among them', () => {
    expect(runsIsolated('src/engine/kernels/matmul.test.ts')).toBe(false);
    expect(runsIsolated('src/io/persist.test.ts')).toBe(true);
    expect(runsIsolated('src/worker/run-folder.test.ts')).toBe(true);
  });
});
