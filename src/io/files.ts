import { errorMessage } from '../util/errors';
/**
 * A backbone or adapter directory, wherever it lives: a folder on disk (Node runner), files the user
 * picked or dropped (browser), or a base URL (the shipped demo, the Hugging Face Hub). Loading code
 * reads through this interface only, so every source goes through the same validation.
 */
export interface FileSource {
  /** Shown in error messages, e.g. "public/models/demo" or "HuggingFaceTB/SmolLM2-135M". */
  readonly label: string;
  has(path: string): Promise<boolean>;
  readBytes(path: string): Promise<Uint8Array>;
}

async function readText(src: FileSource, path: string): Promise<string> {
  const bytes = await src.readBytes(path);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Error(`${src.label}/${path}: not UTF-8 text`);
  }
}

export async function readJson(src: FileSource, path: string): Promise<unknown> {
  const text = await readText(src, path);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${src.label}/${path}: invalid JSON: ${errorMessage(e)}`, { cause: e });
  }
}

/** Files held in memory (uploads, tests). Keys are paths relative to the directory. */
export class MemorySource implements FileSource {
  constructor(
    readonly label: string,
    private readonly files: Map<string, Uint8Array>,
  ) {}
  async has(path: string): Promise<boolean> {
    return this.files.has(path);
  }
  async readBytes(path: string): Promise<Uint8Array> {
    const f = this.files.get(path);
    if (!f) throw new Error(`${this.label}: ${path} is missing`);
    return f;
  }
}

/** The largest JSON file a RecordingSource keeps (a tokenizer.json is a few megabytes). */
const MAX_RECORDED_BYTES = 64 * 1024 * 1024;

/** Keeps the bytes of the JSON files read through another source (exporting a full fine-tune ships them again). */
export class RecordingSource implements FileSource {
  readonly kept = new Map<string, Uint8Array>();
  constructor(private readonly inner: FileSource) {}
  get label(): string {
    return this.inner.label;
  }
  has(path: string): Promise<boolean> {
    return this.inner.has(path);
  }
  async readBytes(path: string): Promise<Uint8Array> {
    const b = await this.inner.readBytes(path);
    if (path.endsWith('.json') && b.byteLength < MAX_RECORDED_BYTES) this.kept.set(path, b);
    return b;
  }
}
