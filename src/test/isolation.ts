/**
 * Which Vitest files run isolated (vite.config.ts `test.projects`). The GPU test files share one
 * module graph per worker, so one WebGPU device and one pipeline cache serve all of a worker's files
 * (docs/ARCHITECTURE.md); a file that changes what the whole process sees would leak into the files
 * after it there, so it runs with a fresh module graph of its own. isolation.test.ts checks that every
 * test file that does so is listed here.
 */

/** Folders whose tests all run isolated: storage (the IndexedDB global and connection) and the zustand stores. */
const ISOLATED_FOLDERS = ['src/io/', 'src/store/'];
/** Single files elsewhere: a stubbed fetch (Hub datasets), fake-indexeddb (the runs library). */
const ISOLATED_FILES = ['src/cli/hub-data.test.ts', 'src/worker/run-folder.test.ts'];

/** The globs of the isolated project (paths from the repository root). */
export const ISOLATED_TESTS: string[] = [...ISOLATED_FOLDERS.map((f) => `${f}**/*.test.ts`), ...ISOLATED_FILES];

export function runsIsolated(path: string): boolean {
  return ISOLATED_FILES.includes(path) || ISOLATED_FOLDERS.some((f) => path.startsWith(f));
}
