/**
 * Cache Storage on disk for the runner (Node has no `caches`): the Hub clients' cache, the
 * playground's cache names and keys (HUB_CACHE, the request URLs), one folder per cache. Each entry
 * is two files named by the SHA-256 of its URL: `<hash>.body` (the bytes) and `<hash>.json` ({url,
 * headers}), the JSON written last, so an entry cut short by a crash is never matched.
 * Default folder: `$LORAMOE_HUB_CACHE`, else `~/.cache/loramoe-playground/hub`.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

function defaultHubCacheDir(): string {
  return process.env.LORAMOE_HUB_CACHE ?? join(homedir(), '.cache', 'loramoe-playground', 'hub');
}

interface EntryMeta {
  url: string;
  headers: Record<string, string>;
}

const keyOf = (url: string): string => createHash('sha256').update(url).digest('hex');
const urlOf = (req: string | Request): string => (typeof req === 'string' ? req : req.url);

class DirectoryCache {
  constructor(private readonly dir: string) {}

  async match(req: string | Request): Promise<Response | undefined> {
    const k = keyOf(urlOf(req));
    try {
      const meta = JSON.parse(await readFile(join(this.dir, `${k}.json`), 'utf8')) as EntryMeta;
      const body = await readFile(join(this.dir, `${k}.body`));
      return new Response(new Uint8Array(body.buffer, body.byteOffset, body.byteLength), { headers: meta.headers });
    } catch {
      return undefined;
    }
  }

  async put(req: string | Request, res: Response): Promise<void> {
    const url = urlOf(req);
    const k = keyOf(url);
    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, `${k}.body`), new Uint8Array(await res.arrayBuffer()));
    const meta: EntryMeta = { url, headers: Object.fromEntries(res.headers) };
    await writeFile(join(this.dir, `${k}.json.partial`), JSON.stringify(meta));
    await rename(join(this.dir, `${k}.json.partial`), join(this.dir, `${k}.json`));
  }

  async keys(): Promise<Request[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: Request[] = [];
    for (const n of names.filter((x) => x.endsWith('.json'))) {
      try {
        out.push(new Request((JSON.parse(await readFile(join(this.dir, n), 'utf8')) as EntryMeta).url));
      } catch {
        // An unreadable entry is no entry.
      }
    }
    return out;
  }

  async delete(req: string | Request): Promise<boolean> {
    const k = keyOf(urlOf(req));
    await rm(join(this.dir, `${k}.json`), { force: true });
    await rm(join(this.dir, `${k}.body`), { force: true });
    return true;
  }
}

/** The parts of CacheStorage the Hub clients use, kept in `root/<cache name>/`. */
export class DirectoryCaches {
  constructor(readonly root: string = defaultHubCacheDir()) {}
  async open(name: string): Promise<DirectoryCache> {
    return new DirectoryCache(join(this.root, name.replace(/[^A-Za-z0-9._-]/g, '_')));
  }
}
