/**
 * Running parsers in a worker thread, so a case that never returns (a synchronous endless loop,
 * e.g. in a dependency) or allocates without bound is cut off and reported, instead of hanging or
 * killing the test run. The worker loads a module, transpiled (entries.ts, or a test's own), and
 * calls its `fuzz*` entry points; arguments and results are plain data (JSON values travel as
 * text, json.ts encodeValue: structured cloning overflows on deeply nested values).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, relative as relativePath, resolve as resolvePath } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { CASE_LIMIT_MS, FUZZ_TEST_TIMEOUT_MS, HANG_CONFIRM_MS, type Outcome, Tally } from './harness';

const PROJECT_ROOT = resolvePath(dirname(fileURLToPath(import.meta.url)), '../..');
const CACHE_DIR = resolvePath(PROJECT_ROOT, 'node_modules/.cache/loramoe-fuzz');

/**
 * Transpiles a TypeScript module of this project, and every project module it imports (statically
 * or dynamically), to JavaScript under node_modules/.cache/loramoe-fuzz (mirroring the tree, so
 * package imports resolve), and returns the entry's file URL.
 */
export async function transpiledModule(srcPath: string): Promise<string> {
  const ts = (await import('typescript')).default;
  const done = new Set<string>();
  const todo = [resolvePath(PROJECT_ROOT, srcPath)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (done.has(file)) continue;
    done.add(file);
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false, isolatedModules: true },
      fileName: file,
    }).outputText;
    // Relative specifiers (extensionless, as the bundler resolves them) become explicit .mjs files.
    const out = js.replace(/(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\2/g, (_m, pre: string, q: string, spec: string) => {
      const base = resolvePath(dirname(file), spec);
      const target = [base, `${base}.ts`, `${base}/index.ts`].find((c) => c.endsWith('.ts') && existsSync(c));
      if (!target) throw new Error(`fuzz worker: cannot resolve ${spec} from ${file}`);
      todo.push(target);
      const rel = spec.replace(/\.ts$/, '') + (target.endsWith('/index.ts') && !spec.endsWith('index') ? '/index' : '');
      return `${pre}${q}${rel}.mjs${q}`;
    });
    const dest = resolvePath(CACHE_DIR, relativePath(PROJECT_ROOT, file)).replace(/\.ts$/, '.mjs');
    if (existsSync(dest) && readFileSync(dest, 'utf8') === out) continue;
    // Written aside then renamed (atomic): test files running in parallel transpile the same modules.
    mkdirSync(dirname(dest), { recursive: true });
    const tmp = `${dest}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(tmp, out);
    renameSync(tmp, dest);
  }
  return pathToFileURL(resolvePath(CACHE_DIR, srcPath).replace(/\.ts$/, '.mjs')).href;
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.url).then((mod) => {
  parentPort.on('message', async ({ id, name, args }) => {
    try {
      const value = await mod[name](...args);
      parentPort.postMessage({ id, ok: true, value });
    } catch (e) {
      const extra = {};
      if (e && typeof e === 'object') for (const [k, v] of Object.entries(e)) if (typeof v === 'string' || typeof v === 'number') extra[k] = v;
      const error = e instanceof Error
        ? { ctor: e.constructor.name, name: e.name, message: e.message, stack: e.stack, extra }
        : { ctor: typeof e, name: typeof e, message: String(e), stack: '', extra };
      parentPort.postMessage({ id, ok: false, error });
    }
  });
  parentPort.postMessage({ ready: true });
}, (e) => parentPort.postMessage({ ready: false, message: String(e && e.stack || e) }));
`;

const BUILTIN_ERRORS: Record<string, new (message?: string) => Error> = { Error, TypeError, RangeError, ReferenceError, SyntaxError, EvalError, URIError };

export type IsolatedOutcome<T> =
  | { kind: 'ok'; value: T; ms: number }
  | { kind: 'error'; error: Error; ms: number }
  | { kind: 'hang'; ms: number }
  /** The worker died (e.g. past its heap limit: an allocation far beyond the input). */
  | { kind: 'died'; message: string; ms: number };

type ThrownData = { ctor: string; name: string; message: string; stack: string; extra?: Record<string, string | number> };
type Reply = { ok: boolean; value?: unknown; error?: ThrownData } | { died: string } | null;

/** Heap limit of the worker (MB): a case allocating past it kills the worker and is reported. */
const WORKER_HEAP_MB = 384;

/**
 * Calls exported functions of a transpiled module in a worker thread. A call that does not answer
 * within its limit is reported as a hang and the worker is replaced; a worker that dies (past its
 * heap limit) is reported too. Errors come back as instances of the matching class (the built-in
 * ones, or those in `errorClasses` by name), with their message and stack.
 */
export class IsolatedRunner {
  /** The worker cases run in, and (after a first restart) a loaded spare that replaces it at once. */
  private current: { worker: Worker; ready: Promise<void> } | null = null;
  private spare: { worker: Worker; ready: Promise<void> } | null = null;
  private restarts = 0;
  private nextId = 0;
  private readonly pending = new Map<number, (m: Reply) => void>();

  /** The module's URL (transpiledModule), or its promise: the first call waits for it. */
  constructor(
    private readonly url: string | Promise<string>,
    private readonly errorClasses: Record<string, abstract new (...args: never[]) => Error> = {},
  ) {}

  /** A runner over entries.ts's fuzz* entry points. */
  static async forEntries(errorClasses: Record<string, abstract new (...args: never[]) => Error> = {}): Promise<IsolatedRunner> {
    return new IsolatedRunner(await transpiledModule('src/fuzz/entries.ts'), errorClasses);
  }

  private spawn(url: string): { worker: Worker; ready: Promise<void> } {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { url },
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
    });
    const slot = { worker, ready: Promise.resolve() };
    const dieAll = (why: string) => {
      if (this.current === slot) {
        for (const cb of this.pending.values()) cb({ died: why });
        this.pending.clear();
        this.current = null;
      } else if (this.spare === slot) this.spare = null;
    };
    slot.ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (m: { ready?: boolean; message?: string; id?: number }) => {
        if (m.ready === true) resolve();
        else if (m.ready === false) reject(new Error(`the fuzz worker could not load ${url}: ${m.message}`));
        else if (m.id !== undefined) {
          const cb = this.pending.get(m.id);
          this.pending.delete(m.id);
          cb?.(m as Reply);
        }
      });
      worker.on('error', (e) => {
        reject(e);
        dieAll(`${e.name}: ${e.message}`);
      });
      worker.on('exit', (code) => dieAll(`the worker exited with code ${code}`));
    });
    slot.ready.catch(() => undefined); // a spare that fails to load is reported when it is used
    return slot;
  }

  private async start(): Promise<Worker> {
    const url = await this.url;
    if (!this.current) {
      this.current = this.spare ?? this.spawn(url);
      this.spare = null;
      if (this.restarts > 0) this.spare = this.spawn(url);
    }
    const slot = this.current;
    await slot.ready;
    return slot.worker;
  }

  private async restart(): Promise<void> {
    const slot = this.current;
    this.current = null;
    this.pending.clear();
    this.restarts++;
    if (slot) await slot.worker.terminate();
  }

  private toError(e: ThrownData): Error {
    const C = (BUILTIN_ERRORS[e.ctor] ?? this.errorClasses[e.ctor]) as (new (message?: string) => Error) | undefined;
    const err: Error = C ? Object.create(C.prototype) : new Error();
    Object.defineProperty(err, 'message', { value: e.message, writable: true, configurable: true });
    Object.defineProperty(err, 'name', { value: e.name, writable: true, configurable: true });
    Object.defineProperty(err, 'stack', { value: e.stack, writable: true, configurable: true });
    for (const [k, v] of Object.entries(e.extra ?? {})) Object.defineProperty(err, k, { value: v, enumerable: true, writable: true, configurable: true });
    if (!C && e.ctor !== 'Error') Object.defineProperty(err, 'constructor', { value: { name: e.ctor } });
    return err;
  }

  /** Calls export `name` with `args` (structured-cloned) in the worker, within `limitMs`. */
  async run<T>(name: string, args: unknown[], limitMs = CASE_LIMIT_MS): Promise<IsolatedOutcome<T>> {
    const worker = await this.start();
    const id = this.nextId++;
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const reply = await new Promise<Reply>((resolve) => {
      this.pending.set(id, resolve);
      timer = setTimeout(() => resolve(null), limitMs);
      worker.postMessage({ id, name, args });
    });
    clearTimeout(timer);
    const ms = performance.now() - t0;
    if (reply === null) {
      this.pending.delete(id);
      await this.restart();
      return { kind: 'hang', ms };
    }
    if ('died' in reply) return { kind: 'died', message: reply.died, ms };
    return reply.ok ? { kind: 'ok', value: reply.value as T, ms } : { kind: 'error', error: this.toError(reply.error!), ms };
  }

  async close(): Promise<void> {
    const slots = [this.current, this.spare];
    this.current = null;
    this.spare = null;
    this.pending.clear();
    await Promise.all(slots.map((slot) => slot?.worker.terminate()));
  }
}

/**
 * Cases that ran past the time limit (or killed the worker), collected instead of failing at once:
 * each costs the whole limit, so shrinking them would take minutes. After `max` of them, further
 * cases get a short limit (`after` ms), so the rest of the run still checks for crashes quickly.
 * The test asserts the list is empty at the end.
 */
export class SlowCases {
  readonly cases: { label: string; input: string; outcome: string }[] = [];
  more = 0;
  constructor(
    readonly max = 1,
    readonly after = 150,
  ) {}
  get limit(): number {
    return this.cases.length < this.max ? CASE_LIMIT_MS : this.after;
  }
  add(label: string, input: string, outcome: string): void {
    if (this.cases.length < this.max) this.cases.push({ label, input: input.length > 4000 ? `${input.slice(0, 4000)}...` : input, outcome });
    else this.more++;
  }
  report(): string {
    return this.cases.map((c) => `${c.label}: ${c.outcome}; input ${c.input}`).join('\n') + (this.more > 0 ? `\n... and ${this.more} more` : '');
  }
}

/**
 * Runs a case in the worker within `slow.limit`; a case that does not answer is run again with
 * HANG_CONFIRM_MS while no hang has been recorded yet (after the first, the run fails anyway and
 * the short limit keeps it quick).
 */
export async function runConfirmed<T>(runner: IsolatedRunner, entry: string, args: unknown[], slow: SlowCases): Promise<IsolatedOutcome<T>> {
  const r = await runner.run<T>(entry, args, slow.limit);
  if (r.kind !== 'hang' || slow.cases.length > 0) return r;
  return runner.run<T>(entry, args, HANG_CONFIRM_MS);
}

/**
 * One case through the worker: a hang or a dead worker goes to `slow` (and returns null), anything
 * else comes back as an Outcome for the usual checks, and is counted in `tally`.
 */
export async function isolatedCase<T>(
  runner: IsolatedRunner,
  entry: string,
  args: unknown[],
  label: string,
  input: () => string,
  slow: SlowCases,
  tally: Tally,
): Promise<Outcome<T> | null> {
  const r = await runConfirmed<T>(runner, entry, args, slow);
  if (r.kind === 'hang' || r.kind === 'died') {
    tally.record(label, 'error', r.ms);
    slow.add(label, input(), r.kind === 'hang' ? `no answer after ${r.ms.toFixed(0)} ms` : `the worker died: ${r.message}`);
    return null;
  }
  tally.record(label, r.kind === 'ok' ? 'load' : 'error', r.ms);
  return r.kind === 'ok' ? { ok: true, value: r.value, ms: r.ms } : { ok: false, error: r.error, ms: r.ms };
}

/**
 * A test file's worker runner over `module`'s fuzz* entry points (entries.ts unless named), made
 * now and transpiled in the background; after the file's tests it is closed and `tally` printed.
 */
export function suiteRunner(
  tally: Tally,
  errorClasses: Record<string, abstract new (...args: never[]) => Error> = {},
  module = 'src/fuzz/entries.ts',
): IsolatedRunner {
  const url = transpiledModule(module);
  url.catch(() => undefined); // a module that fails to transpile fails the first case that runs, not the process
  const runner = new IsolatedRunner(url, errorClasses);
  afterAll(async () => {
    await runner.close();
    console.log(tally.summary());
  });
  return runner;
}

/**
 * fc.assert of a property whose cases run in the worker: `property` is given the SlowCases its
 * cases report hangs and dead workers to; after the run there must be none. `why` heads the list.
 */
export async function assertIsolated<Ts extends [unknown, ...unknown[]]>(
  property: (slow: SlowCases) => fc.IAsyncProperty<Ts>,
  params: fc.Parameters<Ts>,
  why = '',
): Promise<void> {
  const slow = new SlowCases();
  await fc.assert(property(slow), params);
  expect(slow.cases, why + slow.report()).toEqual([]);
}

/** A fuzz test: `it(name)` of assertIsolated with `params` (fuzzParams), under the suite's timeout. */
export function isolatedFuzzTest<Ts extends [unknown, ...unknown[]]>(
  name: string,
  params: fc.Parameters<Ts>,
  property: (slow: SlowCases) => fc.IAsyncProperty<Ts>,
  why = '',
): void {
  it(name, () => assertIsolated(property, params, why), FUZZ_TEST_TIMEOUT_MS);
}

/**
 * A valid input through the worker: it must load (no hang, no dead worker, no error). Returns the
 * outcome for the test's own checks of what loaded.
 */
export async function validCase<T>(runner: IsolatedRunner, entry: string, args: unknown[], tally: Tally): Promise<Extract<Outcome<T>, { ok: true }>> {
  const slow = new SlowCases();
  const r = await isolatedCase<T>(runner, entry, args, 'valid', () => '', slow, tally);
  expect(slow.cases, slow.report()).toEqual([]);
  expect(r?.ok, r && !r.ok ? String(r.error) : '').toBe(true);
  return r as Extract<Outcome<T>, { ok: true }>;
}
