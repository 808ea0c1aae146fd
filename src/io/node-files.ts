/** A directory on disk as a FileSource (Node runner and tests only). */
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileSource } from './files';
import { errorMessage } from '../util/errors';

export class DirectorySource implements FileSource {
  constructor(readonly label: string) {}
  async has(path: string): Promise<boolean> {
    try {
      await access(join(this.label, path));
      return true;
    } catch {
      return false;
    }
  }
  async readBytes(path: string): Promise<Uint8Array> {
    try {
      const buf = await readFile(join(this.label, path));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      throw new Error(`${join(this.label, path)}: ${errorMessage(e)}`, { cause: e });
    }
  }
}
