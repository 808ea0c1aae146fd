/** File helpers shared by the runner's commands. */
import { rename, writeFile } from 'node:fs/promises';

/** Writes a file whole or not at all (a crash mid-write leaves the previous version). */
export async function writeAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  await writeFile(`${path}.partial`, bytes);
  await rename(`${path}.partial`, path);
}
