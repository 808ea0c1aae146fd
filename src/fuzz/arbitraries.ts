/** The worker runner under its former module name, for src/data/parquet-guard.test.ts. */
export { HANG_CONFIRM_MS } from './harness';
export { IsolatedRunner } from './isolated';
