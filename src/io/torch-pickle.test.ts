/**
 * The restricted unpickler (torch-pickle.ts) and the torch.save archive reader (torch-file.ts) on
 * hand-assembled pickles and archives: what a state dict uses loads, with its storage offsets,
 * strides and byte order; every refusal gives its own message with the file, the opcode or name and
 * the byte offset. Files written by PyTorch itself are tested in src/loramoe/adapter-import.test.ts.
 */
import { zipSync } from 'fflate';
import { describe, expect, test } from 'vitest';
import { parseTorchFile, TorchFileError } from './torch-file';
import { MAX_MARK_DEPTH, TorchPickleError, unpickleStateDict } from './torch-pickle';

// ---------------------------------------------------------------------------------------------
// A small pickle assembler: opcodes as pickle.py names them.
// ---------------------------------------------------------------------------------------------

type Part = number | number[] | Uint8Array | string;

function bytesOf(parts: Part[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (typeof p === 'string') out.push(...new TextEncoder().encode(p));
    else out.push(...p);
  }
  return new Uint8Array(out);
}

const u32le = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const PROTO2: Part[] = [0x80, 2];
const MARK = 0x28;
const STOP = 0x2e;
const TUPLE = 0x74;
const TUPLE2 = 0x86;
const EMPTY_DICT = 0x7d;
const EMPTY_TUPLE = 0x29;
const REDUCE = 0x52;
const SETITEMS = 0x75;
const BINPERSID = 0x51;
const NEWFALSE = 0x89;
const str = (s: string): Part[] => {
  const b = new TextEncoder().encode(s);
  return [0x58, u32le(b.length), b]; // BINUNICODE
};
const int = (v: number): Part[] => (v < 256 ? [0x4b, v] : v < 65536 ? [0x4d, v & 0xff, v >> 8] : [0x4a, u32le(v)]);
const global = (module: string, name: string): Part[] => [0x63, `${module}\n${name}\n`];
const tuple = (...items: Part[][]): Part[] => [MARK, ...items.flat(), TUPLE];
const orderedDict: Part[] = [...global('collections', 'OrderedDict'), EMPTY_TUPLE, REDUCE];

/** _rebuild_tensor_v2(('storage', type, key, 'cpu', numel), offset, size, stride, False, OrderedDict()). */
function tensor(o: { type?: string; key: string; numel: number; offset?: number; shape: number[]; stride?: number[] }): Part[] {
  const stride = o.stride ?? o.shape.map((_, i) => o.shape.slice(i + 1).reduce((a, b) => a * b, 1));
  return [
    ...global('torch._utils', '_rebuild_tensor_v2'),
    MARK,
    ...tuple(str('storage'), global('torch', o.type ?? 'FloatStorage'), str(o.key), str('cpu'), int(o.numel)),
    BINPERSID,
    ...int(o.offset ?? 0),
    ...tuple(...o.shape.map(int)),
    ...tuple(...stride.map(int)),
    NEWFALSE,
    ...orderedDict,
    TUPLE,
    REDUCE,
  ];
}

/** A state dict pickle: {name: tensor, ...} (SETITEMS). */
function stateDict(entries: [string, Part[]][], ordered = false): Uint8Array {
  const items = entries.flatMap(([k, v]) => [...str(k), ...v]);
  return bytesOf([...PROTO2, ...(ordered ? orderedDict : [EMPTY_DICT]), MARK, ...items, SETITEMS, STOP]);
}

const FILE = 'dir/adapter_model.bin: archive/data.pkl';

function pickleError(bytes: Uint8Array): TorchPickleError {
  try {
    unpickleStateDict(bytes, FILE);
  } catch (e) {
    expect(e).toBeInstanceOf(TorchPickleError);
    return e as TorchPickleError;
  }
  throw new Error('expected a refusal, the pickle loaded');
}

describe('restricted unpickler: what a state dict uses', () => {
  test('a dict and an OrderedDict of tensors, with offsets and int sizes of every width', () => {
    for (const ordered of [false, true]) {
      const sd = unpickleStateDict(
        stateDict(
          [
            ['a.weight', tensor({ key: '0', numel: 6, shape: [2, 3] })],
            ['b.weight', tensor({ type: 'HalfStorage', key: '1', numel: 70000, offset: 300, shape: [700, 100] })],
            ['c.weight', tensor({ type: 'BFloat16Storage', key: '2', numel: 5, offset: 4, shape: [] })],
          ],
          ordered,
        ),
        FILE,
      );
      expect([...sd.keys()]).toEqual(['a.weight', 'b.weight', 'c.weight']);
      expect(sd.get('a.weight')).toMatchObject({ offset: 0, shape: [2, 3], stride: [3, 1], storage: { dtype: 'F32', key: '0', numel: 6, location: 'cpu' } });
      expect(sd.get('b.weight')).toMatchObject({ offset: 300, shape: [700, 100], stride: [100, 1], storage: { dtype: 'F16', key: '1', numel: 70000 } });
      expect(sd.get('c.weight')).toMatchObject({ offset: 4, shape: [], stride: [], storage: { dtype: 'BF16', typeName: 'torch.BFloat16Storage' } });
    }
  });

  test('memo (BINPUT / BINGET / LONG_BINPUT / LONG_BINGET / MEMOIZE), STACK_GLOBAL, SHORT_BINUNICODE, FRAME, LONG1 and BUILD of _metadata', () => {
    // Protocol 4 forms: FRAME, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE. The storage type is memoized
    // (BINPUT 5) and read back (BINGET 5) for the second tensor, as pickle does for repeated objects.
    const sstr = (s: string): Part[] => [0x8c, s.length, s];
    const pid = (type: Part[], key: string, numel: Part[]): Part[] => [MARK, ...sstr('storage'), ...type, ...sstr(key), ...sstr('cpu'), ...numel, TUPLE, BINPERSID];
    const rebuild: Part[] = [...sstr('torch._utils'), ...sstr('_rebuild_tensor_v2'), 0x93, 0x94];
    const od: Part[] = [...sstr('collections'), ...sstr('OrderedDict'), 0x93, EMPTY_TUPLE, REDUCE, 0x71, 9];
    const good = bytesOf([
      0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0, 0,
      EMPTY_DICT, 0x72, u32le(1000),
      MARK,
      ...sstr('x'),
      ...rebuild,
      MARK, ...pid([...sstr('torch'), ...sstr('FloatStorage'), 0x93, 0x71, 5], '0', [0x8a, 1, 4]), 0x4b, 0, 0x4b, 2, 0x4b, 2, TUPLE2, 0x4b, 2, 0x4b, 1, TUPLE2, NEWFALSE, ...od, TUPLE, REDUCE,
      ...sstr('y'),
      0x6a, u32le(1), // LONG_BINGET 1: the rebuild function, which MEMOIZE stored second (after LONG_BINPUT 1000)
      MARK, ...pid([0x68, 5], '1', [0x8a, 3, 0x70, 0x11, 0x01]), 0x4b, 0, 0x4b, 3, 0x85, 0x4b, 1, 0x85, NEWFALSE, 0x68, 9, TUPLE, REDUCE,
      SETITEMS,
      STOP,
    ]);
    const sd = unpickleStateDict(good, FILE);
    expect(sd.get('x')).toMatchObject({ shape: [2, 2], stride: [2, 1], storage: { key: '0', numel: 4, dtype: 'F32' } });
    // LONG1 0x70 0x11 0x01 little-endian = 0x011170 = 70000
    expect(sd.get('y')).toMatchObject({ shape: [3], stride: [1], storage: { key: '1', numel: 70000, dtype: 'F32' } });

    // OrderedDict with a _metadata attribute dict, set by BUILD (as nn.Module.state_dict() pickles).
    const withMeta = bytesOf([
      ...PROTO2, ...orderedDict, MARK, ...str('w'), ...tensor({ key: '0', numel: 1, shape: [1] }), SETITEMS,
      EMPTY_DICT, ...str('_metadata'), ...orderedDict, ...str(''), EMPTY_DICT, ...str('version'), ...int(1), 0x73, 0x73, 0x73, 0x62, STOP,
    ]);
    expect([...unpickleStateDict(withMeta, FILE).keys()]).toEqual(['w']);
  });

  test('a list (EMPTY_LIST, APPEND, APPENDS) may appear as a value the state dict does not keep', () => {
    // A value nested in _metadata: built, then ignored by BUILD.
    const p = bytesOf([...PROTO2, ...orderedDict, EMPTY_DICT, ...str('k'), 0x5d, ...int(1), 0x61, MARK, ...int(2), ...int(3), 0x65, 0x73, 0x62, STOP]);
    expect(unpickleStateDict(p, FILE).size).toBe(0);
  });
});

describe('restricted unpickler: refusals', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['a forbidden global (os.system)', bytesOf([...PROTO2, ...global('posix', 'system'), ...str('echo hi'), 0x85, REDUCE, STOP]), /global posix\.system is not allowed: a state dict of tensors names only collections\.OrderedDict, torch\._utils\._rebuild_tensor_v2, torch\.FloatStorage.* \(at byte 2\)$/],
    ['builtins.eval through STACK_GLOBAL', bytesOf([0x80, 4, 0x8c, 8, 'builtins', 0x8c, 4, 'eval', 0x93, STOP]), /global builtins\.eval is not allowed.*\(at byte 18\)$/],
    ['a float64 storage', bytesOf([...PROTO2, ...global('torch', 'DoubleStorage'), STOP]), /global torch\.DoubleStorage is not allowed: float64 tensors cannot be adapter weights/],
    ['torch._utils._rebuild_parameter', bytesOf([...PROTO2, ...global('torch._utils', '_rebuild_parameter'), STOP]), /global torch\._utils\._rebuild_parameter is not allowed/],
    ['INST', bytesOf([...PROTO2, MARK, 0x69, 'os\nsystem\n', STOP]), /opcode INST \(0x69\) is not allowed.*\(at byte 3\)$/],
    ['OBJ', bytesOf([...PROTO2, MARK, 0x6f, STOP]), /opcode OBJ \(0x6f\) is not allowed/],
    ['NEWOBJ', bytesOf([...PROTO2, EMPTY_TUPLE, EMPTY_TUPLE, 0x81, STOP]), /opcode NEWOBJ \(0x81\) is not allowed.*\(at byte 4\)$/],
    ['BINFLOAT', bytesOf([...PROTO2, 0x47, [0, 0, 0, 0, 0, 0, 0, 0], STOP]), /opcode BINFLOAT \(0x47\) is not allowed/],
    ['an undefined opcode byte', bytesOf([...PROTO2, 0xff, STOP]), /opcode 0xff \(not a pickle opcode\) is not allowed.*\(at byte 2\)$/],
    ['PROTO 6', bytesOf([0x80, 6, STOP]), /PROTO 6: pickle protocol 6 is newer than 5 \(at byte 0\)/],
    ['an empty pickle', bytesOf([]), /the pickle is empty/],
    ['no STOP', bytesOf([...PROTO2, EMPTY_DICT]), /the pickle ends without a STOP opcode: the file is truncated \(at byte 3\)/],
    ['a string cut short', bytesOf([...PROTO2, 0x58, u32le(100), 'abc']), /the pickle ends inside BINUNICODE \(a 100-byte string needs 100 bytes, 3 left\): the file is truncated \(at byte 2\)/],
    ['a length cut short', bytesOf([...PROTO2, 0x58, 1, 0]), /the pickle ends inside BINUNICODE \(an argument needs 4 bytes, 2 left\)/],
    ['a 4 GiB string length', bytesOf([...PROTO2, 0x58, u32le(0xffffffff), STOP]), /a 4294967295-byte string needs 4294967295 bytes, 1 left/],
    ['BINUNICODE8 past 2^32', bytesOf([...PROTO2, 0x8d, [0, 0, 0, 0, 1, 0, 0, 0], STOP]), /BINUNICODE8 has a length of 1 \* 2\^32 \+ 0 bytes/],
    ['a string that is not UTF-8', bytesOf([...PROTO2, 0x58, u32le(2), [0xc0, 0xaf], STOP]), /BINUNICODE holds a string that is not UTF-8/],
    ['a GLOBAL line without a newline', bytesOf([...PROTO2, 0x63, 'torch']), /the pickle ends inside GLOBAL's module line/],
    ['a GLOBAL line of 1000 bytes', bytesOf([...PROTO2, 0x63, 'a'.repeat(1000), '\nb\n', STOP]), /GLOBAL's module line is longer than 256 bytes/],
    ['a GLOBAL line with a control byte', bytesOf([...PROTO2, 0x63, 'tor\u0001ch\nx\n', STOP]), /GLOBAL's module line holds byte 0x01, not printable ASCII/],
    ['BINGET of an index never stored', bytesOf([...PROTO2, EMPTY_DICT, 0x71, 0, 0x68, 1, STOP]), /BINGET reads memo entry 1, which was never stored \(at byte 5\)/],
    ['LONG_BINGET of an index never stored', bytesOf([...PROTO2, EMPTY_DICT, 0x6a, u32le(0xfffffff0), STOP]), /LONG_BINGET reads memo entry 4294967280, which was never stored/],
    ['BINPUT on an empty stack', bytesOf([...PROTO2, 0x71, 0, STOP]), /BINPUT needs a value to store but the stack is empty/],
    ['TUPLE without MARK', bytesOf([...PROTO2, EMPTY_DICT, TUPLE, STOP]), /TUPLE needs a MARK but there is none \(at byte 3\)/],
    ['TUPLE2 with one item', bytesOf([...PROTO2, MARK, ...int(1), TUPLE2]), /TUPLE2 needs 2 items but the stack is empty/],
    ['MARKs nested too deep', bytesOf([...PROTO2, ...new Array(MAX_MARK_DEPTH + 1).fill(MARK)]), new RegExp(`MARKs nest deeper than ${MAX_MARK_DEPTH} \\(at byte ${2 + MAX_MARK_DEPTH}\\)`)],
    ['STOP with a MARK open', bytesOf([...PROTO2, EMPTY_DICT, MARK, STOP]), /STOP with 1 MARK\(s\) still open/],
    ['STOP with two values', bytesOf([...PROTO2, EMPTY_DICT, EMPTY_DICT, STOP]), /STOP with 2 values on the stack, expected 1/],
    ['a result that is not a dict', bytesOf([...PROTO2, ...int(7), STOP]), /^dir\/adapter_model\.bin: archive\/data\.pkl: the pickle holds an int, not a state dict/],
    ['a value that is not a tensor', bytesOf([...PROTO2, EMPTY_DICT, ...str('w'), ...int(3), 0x73, STOP]), /state dict entry "w" is an int, not a tensor/],
    ['an int key', bytesOf([...PROTO2, EMPTY_DICT, ...int(3), ...tensor({ key: '0', numel: 1, shape: [1] }), 0x73, STOP]), /state dict key 3 is an int, not a tensor name/],
    ['a tuple as a key', bytesOf([...PROTO2, EMPTY_DICT, EMPTY_TUPLE, ...int(1), 0x73, STOP]), /SETITEM uses a tuple of 0 as a dict key/],
    ['a key set twice', stateDict([['w', int(1)], ['w', int(2)]]), /SETITEMS sets the dict key "w" twice/],
    ['SETITEMS with an odd count', bytesOf([...PROTO2, EMPTY_DICT, MARK, ...str('w'), SETITEMS, STOP]), /SETITEMS with an odd number \(1\) of keys and values/],
    ['SETITEM on a list', bytesOf([...PROTO2, 0x5d, ...str('k'), ...int(1), 0x73, STOP]), /SETITEM sets an item of a list, not a dict/],
    ['APPEND to a dict', bytesOf([...PROTO2, EMPTY_DICT, ...int(1), 0x61, STOP]), /APPEND to a dict, not a list/],
    ['REDUCE of a non-global', bytesOf([...PROTO2, ...int(1), EMPTY_TUPLE, REDUCE, STOP]), /REDUCE calls an int; only the allowed globals can be called/],
    ['REDUCE of a storage type', bytesOf([...PROTO2, ...global('torch', 'FloatStorage'), EMPTY_TUPLE, REDUCE, STOP]), /REDUCE calls torch\.FloatStorage, which only names a storage type inside a persistent id/],
    ['OrderedDict with arguments', bytesOf([...PROTO2, ...global('collections', 'OrderedDict'), ...tuple(int(1)), REDUCE, STOP]), /REDUCE calls collections\.OrderedDict with 1 arguments/],
    ['_rebuild_tensor_v2 with 3 arguments', bytesOf([...PROTO2, ...global('torch._utils', '_rebuild_tensor_v2'), ...tuple(int(1), int(2), int(3)), REDUCE, STOP]), /with 3 arguments, expected 6 or 7/],
    ['a tensor whose storage is not a persistent id', bytesOf([...PROTO2, ...global('torch._utils', '_rebuild_tensor_v2'), ...tuple(str('s'), int(0), tuple(), tuple(), [NEWFALSE], orderedDict), REDUCE, STOP]), /the storage argument is a str, expected a persistent storage id/],
    ['size and stride of different lengths', stateDict([['w', tensor({ key: '0', numel: 4, shape: [2, 2], stride: [2] })]]), /size has 2 dimensions but stride has 1/],
    ['a persistent id of another kind', bytesOf([...PROTO2, ...tuple(str('module'), int(1)), BINPERSID, STOP]), /BINPERSID: the persistent id is a tuple of 2 starting with a str, expected \('storage'/],
    ['a persistent id naming a non-storage type', bytesOf([...PROTO2, ...tuple(str('storage'), global('collections', 'OrderedDict'), str('0'), str('cpu'), int(1)), BINPERSID, STOP]), /the storage type is the global collections\.OrderedDict, expected one of torch\.FloatStorage/],
    ['a negative numel', bytesOf([...PROTO2, ...tuple(str('storage'), global('torch', 'FloatStorage'), str('0'), str('cpu'), [0x4a, u32le(0xffffffff)]), BINPERSID, STOP]), /BINPERSID: the element count is -1, expected >= 0/],
    ['a LONG1 beyond 2^53', bytesOf([...PROTO2, 0x8a, 8, [0, 0, 0, 0, 0, 0, 0x40, 0], STOP]), /LONG1 integer 18014398509481984 is beyond 2\^53 - 1/],
    ['a LONG1 of 9 bytes', bytesOf([...PROTO2, 0x8a, 9, new Array(9).fill(0), STOP]), /LONG1 holds a 9-byte integer/],
    ['BUILD on a plain dict', bytesOf([...PROTO2, EMPTY_DICT, EMPTY_DICT, 0x62, STOP]), /BUILD on a dict; only an OrderedDict's attributes can be set/],
    ['BUILD with a str state', bytesOf([...PROTO2, ...orderedDict, ...str('x'), 0x62, STOP]), /BUILD with a str as the state, expected a dict of attributes/],
  ];
  for (const [label, bytes, re] of cases) {
    test(label, () => {
      const e = pickleError(bytes);
      expect(e.message.startsWith(`${FILE}: `), e.message).toBe(true);
      expect(e.message).toMatch(re);
    });
  }

  test('a list holding itself (BINGET of the list into it) is built without looping and refused as a value', () => {
    const p = bytesOf([...PROTO2, EMPTY_DICT, ...str('w'), 0x5d, 0x71, 1, 0x68, 1, 0x61, 0x73, STOP]);
    expect(pickleError(p).message).toMatch(/state dict entry "w" is a list, not a tensor/);
  });
});

// ---------------------------------------------------------------------------------------------
// Archives.
// ---------------------------------------------------------------------------------------------

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

/** A torch.save-like archive: top/data.pkl, top/data/<key> for each storage, top/version. */
function archive(pkl: Uint8Array, storages: Record<string, Uint8Array>, o: { top?: string; byteorder?: string; level?: 0 | 6 } = {}): Uint8Array {
  const top = o.top ?? 'archive';
  const files: Record<string, Uint8Array> = { [`${top}/data.pkl`]: pkl };
  for (const [k, v] of Object.entries(storages)) files[`${top}/data/${k}`] = v;
  files[`${top}/version`] = new TextEncoder().encode('3\n');
  if (o.byteorder !== undefined) files[`${top}/byteorder`] = new TextEncoder().encode(o.byteorder);
  return zipSync(files, { level: o.level ?? 0 });
}

function fileError(bytes: Uint8Array): string {
  try {
    parseTorchFile(bytes, 'dir/adapter_model.bin');
  } catch (e) {
    expect(e instanceof TorchFileError || e instanceof TorchPickleError, String(e)).toBe(true);
    expect((e as Error).message.startsWith('dir/adapter_model.bin: ')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected a refusal, the file loaded');
}

describe('torch.save archives', () => {
  test('tensors at storage offsets, sharing a storage; float16 and bfloat16 decoded exactly; stored entries or deflated', () => {
    // Storage 0: 8 float32 values; w1 = rows 1..2 of a [4, 2] view (offset 2), w2 = element 7 as [1, 1].
    // Storage 1: float16 [1, -2, 0.5] = 0x3c00, 0xc000, 0x3800. Storage 2: bfloat16 [3, -0.25] = 0x4040, 0xbe80.
    const pkl = stateDict([
      ['w1', tensor({ key: '0', numel: 8, offset: 2, shape: [2, 2] })],
      ['w2', tensor({ key: '0', numel: 8, offset: 7, shape: [1, 1], stride: [99, 42] })],
      ['h', tensor({ type: 'HalfStorage', key: '1', numel: 3, shape: [3] })],
      ['b', tensor({ type: 'BFloat16Storage', key: '2', numel: 2, shape: [2] })],
    ]);
    const storages = { '0': f32(0, 1, 2, 3, 4, 5, 6, 7), '1': new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38]), '2': new Uint8Array([0x40, 0x40, 0x80, 0xbe]) };
    for (const level of [0, 6] as const) {
      const sd = parseTorchFile(archive(pkl, storages, { level, top: 'adapter_model' }), 'x.bin');
      expect([...sd.tensors.keys()]).toEqual(['w1', 'w2', 'h', 'b']);
      expect(sd.tensors.get('h')).toMatchObject({ dtype: 'F16', shape: [3] });
      expect([...sd.read('w1')]).toEqual([2, 3, 4, 5]);
      expect([...sd.read('w2')]).toEqual([7]);
      expect([...sd.read('h')]).toEqual([1, -2, 0.5]);
      expect([...sd.read('b')]).toEqual([3, -0.25]);
    }
  });

  test('byteorder "big": storages are byte-swapped', () => {
    const pkl = stateDict([
      ['w', tensor({ key: '0', numel: 2, shape: [2] })],
      ['h', tensor({ type: 'HalfStorage', key: '1', numel: 1, shape: [1] })],
    ]);
    const be = new Uint8Array(8);
    new DataView(be.buffer).setFloat32(0, 1.5, false);
    new DataView(be.buffer).setFloat32(4, -3, false);
    const sd = parseTorchFile(archive(pkl, { '0': be, '1': new Uint8Array([0x3c, 0x00]) }, { byteorder: 'big' }), 'x.bin');
    expect([...sd.read('w')]).toEqual([1.5, -3]);
    expect([...sd.read('h')]).toEqual([1]);
    expect(fileError(archive(pkl, { '0': be, '1': new Uint8Array(2) }, { byteorder: 'middle' }))).toMatch(/archive\/byteorder says "middle", expected "little" or "big"/);
  });

  const one = stateDict([['w', tensor({ key: '0', numel: 4, shape: [2, 2] })]]);
  const good = archive(one, { '0': f32(1, 2, 3, 4) });

  test('refusals name the file and what is wrong', () => {
    expect(fileError(new Uint8Array(0))).toMatch(/not a PyTorch zip archive \(it starts with nothing/);
    expect(fileError(new TextEncoder().encode('{"w": 1}'))).toMatch(/not a PyTorch zip archive \(it starts with 7b 22 77 22/);
    expect(fileError(bytesOf([0x80, 2, 0x8a, 0x0a]))).toMatch(/legacy PyTorch format/);
    expect(fileError(good.subarray(0, good.length - 10))).toMatch(/no zip end-of-central-directory record at the end of the file/);
    expect(fileError(good.subarray(0, 3))).toMatch(/not a PyTorch zip archive/);
    expect(fileError(zipSync({ 'a/b.txt': new Uint8Array(1) }))).toMatch(/no <folder>\/data\.pkl \(entries: "a\/b\.txt"\); it is a zip but not a torch\.save file/);
    expect(fileError(zipSync({ 'a/data.pkl': one, 'b/data.pkl': one }))).toMatch(/2 data\.pkl entries/);
    expect(fileError(archive(one, {}))).toMatch(/tensor "w": its storage "0" \(entry archive\/data\/0\) is not in the archive/);
    expect(fileError(archive(one, { '0': f32(1, 2, 3) }))).toMatch(/tensor "w": storage "0" has 12 bytes, but 4 elements of torch\.FloatStorage take 16/);
    const past = stateDict([['w', tensor({ key: '0', numel: 4, offset: 1, shape: [2, 2] })]]);
    expect(fileError(archive(past, { '0': f32(1, 2, 3, 4) }))).toMatch(/tensor "w": elements 1\.\.5 lie past the end of its 4-element storage "0"/);
    const strided = stateDict([['w', tensor({ key: '0', numel: 4, shape: [2, 2], stride: [1, 2] })]]);
    expect(fileError(archive(strided, { '0': f32(1, 2, 3, 4) }))).toMatch(/tensor "w" has size \[2, 2\] with stride \[1, 2\], not a contiguous row-major layout \(stride \[2, 1\]\); save it with \.contiguous\(\)/);
    const twoViews = stateDict([
      ['a', tensor({ key: '0', numel: 4, shape: [4] })],
      ['b', tensor({ type: 'HalfStorage', key: '0', numel: 8, shape: [8] })],
    ]);
    expect(fileError(archive(twoViews, { '0': f32(1, 2, 3, 4) }))).toMatch(/tensor "b": storage "0" is 8 x torch\.HalfStorage here but 4 x torch\.FloatStorage for an earlier tensor/);
    const huge = stateDict([['w', tensor({ key: '0', numel: 4, shape: [0xffffff, 0xffffff, 0xffffff], stride: [1, 1, 1] })]]);
    expect(fileError(archive(huge, { '0': f32(1, 2, 3, 4) }))).toMatch(/size \[16777215, 16777215, 16777215\] has more than 2\^53 elements/);
    // The pickle's own refusals carry the archive entry's name.
    expect(fileError(archive(bytesOf([...PROTO2, ...global('posix', 'system'), STOP]), {}))).toMatch(/^dir\/adapter_model\.bin: archive\/data\.pkl: global posix\.system is not allowed/);
  });

  test('damaged zip headers: entry counts, offsets and sizes are checked against the file', () => {
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const eocd = good.length - 22;
    const cd = view(good).getUint32(eocd + 16, true);
    const edit = (f: (v: DataView) => void) => {
      const b = good.slice();
      f(view(b));
      return b;
    };
    expect(fileError(edit((v) => v.setUint16(eocd + 10, 60000, true)))).toMatch(/the zip claims 60000 entries in a \d+-byte central directory/);
    expect(fileError(edit((v) => v.setUint32(eocd + 16, 0xfffffff0, true)))).toMatch(/the zip central directory \(bytes 4294967280\.\.\d+\) runs past its end record/);
    expect(fileError(edit((v) => v.setUint32(cd, 0, true)))).toMatch(/zip central directory entry 0 at byte \d+ has no central header signature/);
    expect(fileError(edit((v) => v.setUint32(cd + 42, 3, true)))).toMatch(/zip entry "archive\/data\.pkl": no local header at byte 3/);
    expect(fileError(edit((v) => v.setUint32(cd + 20, 0x7ffffff0, true)))).toMatch(/zip entry "archive\/data\.pkl": its 2147483632 bytes at byte \d+ run past the end/);
    expect(fileError(edit((v) => v.setUint16(cd + 10, 14, true)))).toMatch(/zip entry "archive\/data\.pkl" uses zip compression method 14/);
    expect(fileError(edit((v) => v.setUint32(cd + 20, 0xffffffff, true)))).toMatch(/zip entry "archive\/data\.pkl" defers its sizes to a zip64 field it does not have/);
    expect(fileError(edit((v) => v.setUint16(eocd + 10, 0xffff, true)))).toMatch(/defers to zip64 but there is no zip64 locator/);
    const deflated = archive(one, { '0': f32(1, 2, 3, 4) }, { level: 6 });
    const dcd = view(deflated).getUint32(deflated.length - 22 + 16, true);
    const big = deflated.slice();
    view(big).setUint32(dcd + 24, 0x7fffffff, true);
    expect(fileError(big)).toMatch(/zip entry "archive\/data\.pkl" declares 2147483647 bytes from \d+ deflated bytes/);
  });
});
