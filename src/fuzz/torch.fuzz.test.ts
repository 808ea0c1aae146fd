/**
 * Fuzz tests of the PyTorch adapter reader: the restricted unpickler (src/io/torch-pickle.ts), the
 * torch.save archive reader (src/io/torch-file.ts) and loadAdapter on folders holding
 * adapter_model.bin, starting from the files PyTorch wrote (src/loramoe/fixtures/).
 *
 * Inputs: the fixtures' data.pkl with byte edits; pickles assembled from random opcode sequences
 * (allowed and forbidden opcodes and names, valid tensor records spliced in, lengths and memo
 * indices off by some); whole archives with byte edits; archives rebuilt around an edited pickle;
 * adapter folders with an edited adapter_model.bin.
 *
 * Every case must end in an Error (not a TypeError, RangeError, ...) whose message names the file,
 * or in a load whose every tensor is consistent with the file: sizes whose product is the element
 * count read, contiguous strides, elements inside their storage, and no more values than the
 * file's bytes can hold. Cases run in a worker thread with the harness's time and heap limits, so
 * an input that makes the reader loop or allocate without bound is reported.
 *
 * Run counts: see harness.ts (FUZZ_RUNS multiplies them).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { TorchFileError } from '../io/torch-file';
import { TorchPickleError } from '../io/torch-pickle';
import { TINY_SHAPE } from '../test/tiny-llama';
import { byteMutations, mutateBytes } from './bytes';
import { checkClearError, FUZZ_TEST_TIMEOUT_MS, fuzzParams, type Outcome, Tally, violation } from './harness';
import { assertIsolated, isolatedCase, isolatedFuzzTest, SlowCases, suiteRunner, validCase } from './isolated';
import type { TorchSummary } from './torch-entries';

const FIXTURES = fileURLToPath(new URL('../loramoe/fixtures', import.meta.url));
const FILE = 'fuzz/adapter_model.bin';
const LABEL = 'fuzz/torch-adapter';

const tally = new Tally('torch.fuzz.test.ts');
const runner = suiteRunner(tally, { TorchPickleError, TorchFileError }, 'src/fuzz/torch-entries.ts');

const read = (rel: string) => new Uint8Array(readFileSync(join(FIXTURES, rel)));
const ARCHIVES = ['official-f32', 'official-f16', 'official-bf16', 'peft-lora'].map((d) => read(`${d}/adapter_model.bin`));

/** The archive's entries, and its data.pkl. */
function entriesOf(archive: Uint8Array): { files: Record<string, Uint8Array>; pklName: string } {
  const files = unzipSync(archive);
  const pklName = Object.keys(files).find((n) => n.endsWith('/data.pkl'))!;
  return { files, pklName };
}
const PICKLES = ARCHIVES.map((a) => {
  const { files, pklName } = entriesOf(a);
  return files[pklName];
});

/**
 * Checks a load against the rules every tensor must meet. With `maxStorageBytes` (archives, where
 * storages are read) the tensors were read too: each read gives its element count, lies inside its
 * storage, is contiguous, and the distinct storages hold no more bytes than the archive can
 * (its own size when stored, 1032x that when deflated: deflate's largest ratio).
 */
function checkSummary(s: TorchSummary, maxStorageBytes: number | null): void {
  const storages = new Map<string, number>();
  for (const t of s.tensors) {
    if (!['F32', 'F16', 'BF16'].includes(t.dtype)) violation(`tensor ${t.name} has dtype ${t.dtype}`);
    if (t.shape.length !== t.stride.length) violation(`tensor ${t.name}: ${t.shape.length} sizes, ${t.stride.length} strides`);
    if (![...t.shape, ...t.stride, t.offset, t.storageNumel].every((d) => Number.isSafeInteger(d) && d >= 0)) violation(`tensor ${t.name}: a size, stride or offset that is not a natural number`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.numel) violation(`tensor ${t.name}: numel ${t.numel} but sizes [${t.shape.join(', ')}]`);
    if (maxStorageBytes === null) continue;
    if (t.read !== numel) violation(`tensor ${t.name}: read ${t.read} values, its sizes make ${numel}`);
    if (numel > 0) {
      if (t.offset + numel > t.storageNumel) violation(`tensor ${t.name}: elements ${t.offset}..${t.offset + numel} past its storage of ${t.storageNumel}`);
      let want = 1;
      for (let i = t.shape.length - 1; i >= 0; i--) {
        if (t.shape[i] !== 1 && t.stride[i] !== want) violation(`tensor ${t.name}: strides [${t.stride.join(', ')}] are not contiguous for [${t.shape.join(', ')}]`);
        want *= t.shape[i];
      }
    }
    storages.set(t.storageKey, t.storageNumel * (t.dtype === 'F32' ? 4 : 2));
  }
  if (maxStorageBytes !== null) {
    const total = [...storages.values()].reduce((a, b) => a + b, 0);
    if (total > maxStorageBytes) violation(`storages of ${total} bytes from an archive that can hold ${maxStorageBytes}`);
  }
}

function checkOutcome(r: Outcome<TorchSummary>, fileName: string, maxStorageBytes: number | null): void {
  if (!r.ok) {
    checkClearError(r.error, { mustInclude: [fileName], classes: [TorchPickleError, TorchFileError] });
    return;
  }
  checkSummary(r.value, maxStorageBytes);
}

async function pickleCase(label: string, bytes: Uint8Array, slow: SlowCases): Promise<void> {
  const r = await isolatedCase<TorchSummary>(runner, 'fuzzUnpickle', [bytes, FILE], label, () => Buffer.from(bytes).toString('hex').slice(0, 3000), slow, tally);
  if (r) checkOutcome(r, FILE, null);
}

async function archiveCase(label: string, bytes: Uint8Array, slow: SlowCases, deflated = false): Promise<void> {
  const r = await isolatedCase<TorchSummary>(runner, 'fuzzParseTorchFile', [bytes, FILE], label, () => Buffer.from(bytes).toString('hex').slice(0, 3000), slow, tally);
  if (r) checkOutcome(r, FILE, deflated ? 1032 * bytes.length : bytes.length);
}

// ---------------------------------------------------------------------------------------------
// Pickles from opcode sequences.
// ---------------------------------------------------------------------------------------------

const u32le = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const enc = (s: string) => [...new TextEncoder().encode(s)];
const binunicode = (s: string, lengthDelta = 0) => [0x58, ...u32le(Math.max(0, enc(s).length + lengthDelta)), ...enc(s)];

const WORDS = ['storage', 'cpu', 'cuda:0', '0', '1', 'w', 'base_model.model.model.layers.0.mlp.gate_proj.lora_A.weight', '', '_metadata', 'version'];
const GLOBALS: [string, string][] = [
  ['collections', 'OrderedDict'],
  ['torch._utils', '_rebuild_tensor_v2'],
  ['torch', 'FloatStorage'],
  ['torch', 'HalfStorage'],
  ['torch', 'BFloat16Storage'],
  ['torch', 'LongStorage'],
  ['torch._utils', '_rebuild_parameter'],
  ['posix', 'system'],
  ['builtins', 'eval'],
  ['__builtin__', 'getattr'],
];

/** A valid _rebuild_tensor_v2 record (what torch.save writes for one tensor) with random numbers. */
const tensorRecord = fc
  .record({
    type: fc.constantFrom('FloatStorage', 'HalfStorage', 'BFloat16Storage'),
    key: fc.constantFrom('0', '1', '2'),
    numel: fc.oneof(fc.nat({ max: 64 }), fc.constant(0x7fffffff)),
    offset: fc.nat({ max: 70 }),
    shape: fc.array(fc.nat({ max: 9 }), { maxLength: 3 }),
  })
  .map(({ type, key, numel, offset, shape }) => {
    const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const int = (v: number) => (v < 256 ? [0x4b, v] : [0x4a, ...u32le(v)]);
    return [
      0x63, ...enc('torch._utils\n_rebuild_tensor_v2\n'),
      0x28, 0x28, ...binunicode('storage'), 0x63, ...enc(`torch\n${type}\n`), ...binunicode(key), ...binunicode('cpu'), ...int(numel), 0x74, 0x51,
      ...int(offset), 0x28, ...shape.flatMap(int), 0x74, 0x28, ...stride.flatMap(int), 0x74, 0x89,
      0x63, ...enc('collections\nOrderedDict\n'), 0x29, 0x52, 0x74, 0x52,
    ];
  });

const ONE_BYTE = [0x28, 0x2e, 0x7d, 0x5d, 0x29, 0x74, 0x85, 0x86, 0x87, 0x4e, 0x88, 0x89, 0x51, 0x52, 0x62, 0x73, 0x75, 0x61, 0x65, 0x94, 0x30, 0x32, 0x81, 0x31];

const pickleToken: fc.Arbitrary<number[]> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...ONE_BYTE).map((b) => [b]) },
  { weight: 2, arbitrary: fc.nat({ max: 255 }).map((b) => [b]) },
  { weight: 2, arbitrary: fc.nat({ max: 300 }).map((v) => (v < 256 ? [0x4b, v] : [0x4d, v & 0xff, v >> 8])) },
  { weight: 1, arbitrary: fc.integer().map((v) => [0x4a, ...u32le(v >>> 0)]) },
  { weight: 1, arbitrary: fc.array(fc.nat({ max: 255 }), { maxLength: 10 }).map((b) => [0x8a, b.length, ...b]) },
  { weight: 3, arbitrary: fc.record({ s: fc.oneof(fc.constantFrom(...WORDS), fc.string({ maxLength: 6 })), d: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) }) }).map(({ s, d }) => binunicode(s, d)) },
  { weight: 1, arbitrary: fc.constantFrom(...WORDS).map((s) => [0x8c, enc(s).length, ...enc(s)]) },
  { weight: 3, arbitrary: fc.constantFrom(...GLOBALS).map(([m, n]) => [0x63, ...enc(`${m}\n${n}\n`)]) },
  { weight: 1, arbitrary: fc.constantFrom(...GLOBALS).map(([m, n]) => [0x8c, m.length, ...enc(m), 0x8c, n.length, ...enc(n), 0x93]) },
  { weight: 2, arbitrary: fc.nat({ max: 6 }).map((i) => [0x71, i]) },
  { weight: 2, arbitrary: fc.nat({ max: 8 }).map((i) => [0x68, i]) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom(0x72, 0x6a), i: fc.oneof(fc.nat({ max: 8 }), fc.constant(0xffffffff)) }).map(({ op, i }) => [op, ...u32le(i)]) },
  { weight: 1, arbitrary: fc.nat({ max: 6 }).map((v) => [0x80, v]) },
  { weight: 3, arbitrary: tensorRecord },
);

/** A pickle: PROTO 2, then tokens; most end in STOP after an opened dict, like a state dict. */
const tokenPickle: fc.Arbitrary<Uint8Array> = fc
  .record({ head: fc.boolean(), tokens: fc.array(pickleToken, { maxLength: 30 }), stop: fc.boolean() })
  .map(({ head, tokens, stop }) => new Uint8Array([0x80, 2, ...(head ? [0x7d, 0x28] : []), ...tokens.flat(), ...(head ? [0x75] : []), ...(stop ? [0x2e] : [])]));

describe('torch adapter files fuzz', () => {
  it('the fixtures load in the worker', async () => {
    for (const a of ARCHIVES) {
      const r = await validCase<TorchSummary>(runner, 'fuzzParseTorchFile', [a, FILE], tally);
      checkOutcome(r, FILE, a.length);
      expect(r.value.tensors.length).toBeGreaterThan(0);
    }
  });

  isolatedFuzzTest('unpickler: the fixtures\' data.pkl with byte edits', fuzzParams(7001, 1200), (slow) =>
    fc.asyncProperty(fc.nat({ max: PICKLES.length - 1 }), byteMutations(4), async (i, m) => {
      await pickleCase('pickle: bytes edited', mutateBytes(PICKLES[i], m), slow);
    }),
  );

  isolatedFuzzTest('unpickler: pickles assembled from opcodes (allowed and forbidden), tensor records, odd lengths and memo indices', fuzzParams(7002, 1200), (slow) =>
    fc.asyncProperty(tokenPickle, async (bytes) => {
      await pickleCase('pickle: opcodes', bytes, slow);
    }),
  );

  isolatedFuzzTest('archive: whole files with byte edits (zip headers, the pickle, storages), truncations included', fuzzParams(7003, 800), (slow) =>
    fc.asyncProperty(fc.nat({ max: ARCHIVES.length - 1 }), byteMutations(3), async (i, m) => {
      await archiveCase('archive: bytes edited', mutateBytes(ARCHIVES[i], m), slow);
    }),
  );

  it('archive: rebuilt around an edited pickle, a storage cut or dropped', async () => {
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('pickle' as const), m: byteMutations(3) }),
      fc.record({ kind: fc.constant('opcodes' as const), p: tokenPickle }),
      fc.record({ kind: fc.constant('storage' as const), key: fc.nat({ max: 40 }), cut: fc.integer({ min: -1, max: 300 }) }),
    );
    await assertIsolated(
      (slow) =>
        fc.asyncProperty(fc.nat({ max: ARCHIVES.length - 1 }), edit, fc.boolean(), async (i, e, deflate) => {
          const { files, pklName } = entriesOf(ARCHIVES[i]);
          if (e.kind === 'pickle') files[pklName] = mutateBytes(files[pklName], e.m);
          else if (e.kind === 'opcodes') files[pklName] = e.p;
          else {
            const storages = Object.keys(files).filter((n) => n.includes('/data/'));
            const name = storages[e.key % storages.length];
            if (e.cut < 0) delete files[name];
            else files[name] = files[name].slice(0, e.cut);
          }
          await archiveCase(`archive: ${e.kind}`, zipSync(files, { level: deflate ? 6 : 0 }), slow, deflate);
        }),
      fuzzParams(7004, 800),
    );
  }, FUZZ_TEST_TIMEOUT_MS);

  it('loadAdapter: folders whose adapter_model.bin is edited', async () => {
    const folders = ['official-f32', 'peft-lora'].map((d) => {
      const files = new Map<string, Uint8Array>();
      for (const f of readdirSync(join(FIXTURES, d))) files.set(f, read(`${d}/${f}`));
      return files;
    });
    await assertIsolated(
      (slow) =>
        fc.asyncProperty(fc.nat({ max: folders.length - 1 }), byteMutations(3), async (i, m) => {
          const files = new Map(folders[i]);
          const bin = mutateBytes(files.get('adapter_model.bin')!, m);
          files.set('adapter_model.bin', bin);
          const r = await isolatedCase<{ floats: number; modules: number; weightsFile: string }>(
            runner,
            'fuzzLoadTorchAdapter',
            [LABEL, [...files], TINY_SHAPE],
            'folder: adapter_model.bin edited',
            () => Buffer.from(bin).toString('hex').slice(0, 3000),
            slow,
            tally,
          );
          if (!r) return;
          if (!r.ok) {
            checkClearError(r.error, { mustInclude: [LABEL], mustIncludeOneOf: ['adapter_model.bin', 'adapter_config.json'] });
            return;
          }
          if (r.value.weightsFile !== 'adapter_model.bin') violation(`read ${r.value.weightsFile}`);
          if (r.value.floats * 2 > bin.length) violation(`${r.value.floats} adapter values from a ${bin.length}-byte file`);
          if (r.value.modules !== TINY_SHAPE.numLayers * (i === 0 ? 4 : 3)) violation(`${r.value.modules} adapted modules`);
        }),
      fuzzParams(7005, 500),
    );
  }, FUZZ_TEST_TIMEOUT_MS);
});
