import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runsIsolated } from './isolation';

/**
 * What marks a test file as changing process-wide state: stubbed or assigned globals, module mocks,
 * an IndexedDB (fake or real), the stores' state.
 */
const PROCESS_WIDE = /vi\.stubGlobal|vi\.mock\(|fake-indexeddb|indexedDB|globalThis\.\w+\s*=[^=]|Store\.setState|\.getState\(\)/;

/** Every test file under src, as a path from the repository root. */
function testFiles(): string[] {
  return (readdirSync('src', { recursive: true }) as string[]).filter((p) => p.endsWith('.test.ts')).map((p) => `src/${p.replaceAll('\\', '/')}`);
}

describe('test isolation', () => {
  it('every test file that changes process-wide state runs isolated', () => {
    const files = testFiles();
    expect(files.length).toBeGreaterThan(50);
    // This file names the markers without using them.
    const changing = files.filter((f) => f !== 'src/test/isolation.test.ts' && PROCESS_WIDE.test(readFileSync(f, 'utf8')));
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
