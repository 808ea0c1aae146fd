/**
 * Files the user gives the browser: picked with an <input type="file"> (single files or a whole
 * folder), dropped (files or folders, through the DataTransfer entry API), or packed in a zip. All
 * become FileEntry lists (path relative to the folder, Blob), and a BlobSource reads them through
 * the FileSource interface every loader uses. Blobs are read lazily, so a File posted to the worker
 * is not copied until it is read.
 */
import { unzipSync } from 'fflate';
import type { FileSource } from './files';
import { errorMessage } from '../util/errors';

export interface FileEntry {
  path: string;
  file: Blob;
}

/** FileSource over blobs in memory (picked files, a zip's entries, Hub cache responses). */
export class BlobSource implements FileSource {
  private readonly files: Map<string, Blob>;
  constructor(
    readonly label: string,
    entries: readonly FileEntry[],
  ) {
    this.files = new Map(entries.map((e) => [e.path, e.file]));
  }
  async has(path: string): Promise<boolean> {
    return this.files.has(path);
  }
  async readBytes(path: string): Promise<Uint8Array> {
    const f = this.files.get(path);
    if (!f) throw new Error(`${this.label}: ${path} is missing`);
    return new Uint8Array(await f.arrayBuffer());
  }
  paths(): string[] {
    return [...this.files.keys()];
  }
}

/**
 * Removes the folder all paths share (a picked or dropped folder's own name, a zip's top folder),
 * so the files sit at the root: "SmolLM2/config.json" -> "config.json". Hidden files (".git/...",
 * ".DS_Store") and macOS zip metadata ("__MACOSX/") are dropped.
 */
export function normalizeEntries(entries: readonly FileEntry[]): FileEntry[] {
  const clean = entries
    .map((e) => ({ ...e, path: e.path.replace(/\\/g, '/').replace(/^\/+/, '') }))
    .filter((e) => e.path.length > 0 && !e.path.endsWith('/') && !e.path.split('/').some((part) => part.startsWith('.') || part === '__MACOSX'));
  for (;;) {
    const first = clean[0]?.path.split('/');
    if (!first || first.length < 2) break;
    const top = `${first[0]}/`;
    if (!clean.every((e) => e.path.startsWith(top))) break;
    for (const e of clean) e.path = e.path.slice(top.length);
  }
  return clean;
}

/** Entries from an <input type="file"> (with or without `webkitdirectory`). */
export function entriesFromFiles(files: ArrayLike<File>): FileEntry[] {
  const out: FileEntry[] = [];
  for (let i = 0; i < files.length; i++) {
    const f = files[i];
    out.push({ path: f.webkitRelativePath || f.name, file: f });
  }
  return normalizeEntries(out);
}

function readAllEntries(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  // readEntries returns at most ~100 entries per call: call until it returns none.
  return new Promise((resolve, reject) => {
    const all: FileSystemEntry[] = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) resolve(all);
        else {
          all.push(...batch);
          next();
        }
      }, reject);
    next();
  });
}

async function walk(entry: FileSystemEntry, prefix: string, out: FileEntry[]): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    out.push({ path: prefix + entry.name, file });
  } else if (entry.isDirectory) {
    const children = await readAllEntries((entry as FileSystemDirectoryEntry).createReader());
    for (const c of children) await walk(c, `${prefix}${entry.name}/`, out);
  }
}

/** Entries from a drop: files and whole folders (recursively). */
export async function entriesFromDataTransfer(dt: DataTransfer): Promise<FileEntry[]> {
  const roots: FileSystemEntry[] = [];
  const plain: File[] = [];
  for (let i = 0; i < dt.items.length; i++) {
    const item = dt.items[i];
    if (item.kind !== 'file') continue;
    const entry = typeof item.webkitGetAsEntry === 'function' ? item.webkitGetAsEntry() : null;
    if (entry) roots.push(entry);
    else {
      const f = item.getAsFile();
      if (f) plain.push(f);
    }
  }
  const out: FileEntry[] = plain.map((f) => ({ path: f.name, file: f }));
  for (const r of roots) await walk(r, '', out);
  return normalizeEntries(out);
}

/** The entries of a zip archive (stored or deflated). */
export function entriesFromZip(bytes: Uint8Array, name = 'archive.zip'): FileEntry[] {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new Error(`${name}: not a readable zip archive (${errorMessage(e)})`, { cause: e });
  }
  return normalizeEntries(Object.entries(files).map(([path, data]) => ({ path, file: new Blob([data as Uint8Array<ArrayBuffer>]) })));
}

/** True when the entries are one zip file to unpack. */
export function isZip(entries: readonly FileEntry[]): boolean {
  return entries.length === 1 && entries[0].path.toLowerCase().endsWith('.zip');
}
