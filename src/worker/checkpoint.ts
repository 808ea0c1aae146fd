// A checkpoint's run description lives with the run driver (src/run/checkpoint.ts); the stores read its type here.
export type { RunMeta } from '../run/checkpoint';
