/**
 * A backbone's files under a same-origin URL (the shipped demo model), read through the FileSource
 * interface every loader uses.
 */
import type { FileSource } from './files';

/** Files under a same-origin URL, known by name (a static server answers unknown paths with its index page). */
export class StaticUrlSource implements FileSource {
  constructor(
    readonly label: string,
    private readonly baseUrl: string,
    private readonly files: readonly string[],
  ) {}
  async has(path: string): Promise<boolean> {
    return this.files.includes(path);
  }
  async readBytes(path: string): Promise<Uint8Array> {
    const res = await fetch(`${this.baseUrl.replace(/\/$/, '')}/${path}`);
    if (!res.ok) throw new Error(`${this.label}/${path}: HTTP ${res.status} ${res.statusText}`);
    if ((res.headers.get('content-type') ?? '').includes('text/html')) throw new Error(`${this.label}/${path}: not found (the server answered with a web page)`);
    return new Uint8Array(await res.arrayBuffer());
  }
}
