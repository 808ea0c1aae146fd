import { describe, expect, it } from 'vitest';
import {
  getTensorBytes,
  getTensorF32,
  MAX_HEADER_BYTES,
  parseSafetensors,
  parseSafetensorsBlobHeader,
  parseSafetensorsHeader,
  readSafetensorsHeaderLength,
  SafetensorsError,
  type SafetensorsErrorCode,
  writeSafetensors,
} from './safetensors';
import { roundToDtype } from './dtypes';
import { Rng } from '../util/random';

const FILE = 'crafted.safetensors';

/** A file from a header text (not padded) and data bytes, with an optional explicit header length. */
function craft(header: string | Uint8Array, data: Uint8Array | number = 0, headerLength?: bigint): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

/** One tensor entry of a header. */
const entry = (name: string, dtype: string, shape: number[], b: number, e: number) =>
  `${JSON.stringify(name)}:{"dtype":"${dtype}","shape":[${shape.join(',')}],"data_offsets":[${b},${e}]}`;

function expectError(fn: () => unknown, code: SafetensorsErrorCode, ...patterns: RegExp[]): SafetensorsError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(SafetensorsError);
  const se = err as SafetensorsError;
  expect(se.code, se.message).toBe(code);
  expect(se.message).toContain(FILE);
  for (const p of patterns) expect(se.message).toMatch(p);
  return se;
}

const parse = (bytes: Uint8Array) => parseSafetensors(bytes, FILE);

describe('reader against a file written by hand', () => {
  // Header (255 bytes, ASCII, no padding, tensors not in offset order, a \u escape in a name):
  const header =
    String.raw`{"c":{"dtype":"F32","shape":[],"data_offsets":[6,10]},` +
    String.raw`"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},` +
    String.raw`"b\u00e9":{"dtype":"BF16","shape":[1,1],"data_offsets":[4,6]},` +
    String.raw`"i":{"dtype":"I64","shape":[1],"data_offsets":[10,18]},` +
    String.raw`"__metadata__":{"format":"pt"}}`;
  const bytes: number[] = [0xff, 0, 0, 0, 0, 0, 0, 0]; // header length 255, u64 little-endian
  for (let k = 0; k < header.length; k++) bytes.push(header.charCodeAt(k));
  bytes.push(0x00, 0x3c, 0x00, 0xc0); // a: F16 [1.0, -2.0]
  bytes.push(0x00, 0x3f); // bé: BF16 0.5 (0x3f00)
  bytes.push(0x00, 0x00, 0x40, 0x40); // c: F32 3.0 (0x40400000)
  bytes.push(0x07, 0, 0, 0, 0, 0, 0, 0); // i: I64 7
  const file = new Uint8Array(bytes);

  it('has the lengths counted by hand', () => {
    expect(header.length).toBe(255);
    expect(file.length).toBe(8 + 255 + 18);
  });

  it('parses names, dtypes, shapes, offsets and metadata', () => {
    const st = parse(file);
    expect(st.headerLength).toBe(255);
    expect(st.dataOffset).toBe(263);
    expect(st.dataLength).toBe(18);
    expect(st.byteLength).toBe(281);
    expect([...st.tensors.keys()]).toEqual(['a', 'bé', 'c', 'i']); // sorted by offset
    expect(st.tensors.get('bé')).toEqual({ dtype: 'BF16', shape: [1, 1], begin: 4, end: 6 });
    expect(st.tensors.get('c')).toEqual({ dtype: 'F32', shape: [], begin: 6, end: 10 });
    expect(st.metadata).toEqual({ format: 'pt' });
  });

  it('reads the values', () => {
    const st = parse(file);
    expect(Array.from(getTensorF32(st, file, 'a'))).toEqual([1, -2]);
    expect(Array.from(getTensorF32(st, file, 'bé'))).toEqual([0.5]);
    expect(Array.from(getTensorF32(st, file, 'c'))).toEqual([3]);
    expect(Array.from(getTensorBytes(st, file, 'i'))).toEqual([7, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('lists integer tensors but refuses them as floats', () => {
    const st = parse(file);
    expect(st.tensors.get('i')?.dtype).toBe('I64');
    expectError(() => getTensorF32(st, file, 'i'), 'NotFloatDtype', /"i"/, /I64/);
    expectError(() => getTensorF32(st, file, 'missing'), 'TensorNotFound', /"missing"/);
  });
});

describe('round trip through the writer', () => {
  const specials = new Float32Array([0, -0, 1, -1.5, Infinity, -Infinity, NaN, 1e-45, 3e-39, 65504, 1e-8, 3.4e38]);

  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`${dtype} is bit-exact`, () => {
      const rng = new Rng(7);
      const a = roundToDtype(dtype, rng.f32Array(6 * 5, -3, 3));
      const b = roundToDtype(dtype, specials);
      const c = new Float32Array(0);
      const bytes = writeSafetensors(
        [
          { name: 'layer.0.w', dtype, shape: [6, 5], data: a },
          { name: 'specials', dtype, shape: [specials.length], data: b },
          { name: 'empty', dtype, shape: [0, 3], data: c },
        ],
        { format: 'pt', note: 'é "quoted"' },
      );
      const st = parse(bytes);
      expect([...st.tensors.keys()]).toEqual(['layer.0.w', 'specials', 'empty']);
      expect(st.tensors.get('layer.0.w')?.shape).toEqual([6, 5]);
      expect(st.metadata).toEqual({ format: 'pt', note: 'é "quoted"' });
      for (const [name, want] of [
        ['layer.0.w', a],
        ['specials', b],
        ['empty', c],
      ] as const) {
        const got = getTensorF32(st, bytes, name);
        expect(new Uint32Array(got.buffer, got.byteOffset, got.length)).toEqual(new Uint32Array(want.buffer));
      }
    });
  }

  it('rounds F16 / BF16 to nearest even on write', () => {
    const rng = new Rng(8);
    const x = rng.f32Array(100, -100, 100);
    for (const dtype of ['F16', 'BF16'] as const) {
      const bytes = writeSafetensors([{ name: 'x', dtype, shape: [100], data: x }]);
      expect(getTensorF32(parse(bytes), bytes, 'x')).toEqual(roundToDtype(dtype, x));
    }
  });

  it('pads the header with spaces to a multiple of 8 and lays tensors out in the given order', () => {
    const bytes = writeSafetensors([
      { name: 'z', dtype: 'F16', shape: [3], data: new Float32Array(3) },
      { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    ]);
    const st = parse(bytes);
    expect(st.dataOffset % 8).toBe(0);
    const headerText = new TextDecoder().decode(bytes.subarray(8, st.dataOffset));
    expect(headerText).toMatch(/\}\s*$/);
    expect(headerText.trimEnd().length).toBeGreaterThan(st.headerLength - 8);
    expect(headerText.slice(headerText.trimEnd().length)).toMatch(/^ *$/);
    expect(JSON.parse(headerText)).toEqual({
      z: { dtype: 'F16', shape: [3], data_offsets: [0, 6] },
      a: { dtype: 'F32', shape: [1], data_offsets: [6, 10] },
    });
  });

  it('writes an empty file', () => {
    const bytes = writeSafetensors([]);
    expect(bytes.length).toBe(16); // "{}" padded to 8
    expect(parse(bytes).tensors.size).toBe(0);
  });

  it('refuses bad input', () => {
    const d = new Float32Array(4);
    expect(() => writeSafetensors([{ name: 'w', dtype: 'F32', shape: [3], data: d }])).toThrow(/"w".*3 elements.*4/);
    expect(() =>
      writeSafetensors([
        { name: 'w', dtype: 'F32', shape: [4], data: d },
        { name: 'w', dtype: 'F32', shape: [4], data: d },
      ]),
    ).toThrow(/duplicate tensor name "w"/);
    expect(() => writeSafetensors([{ name: '__metadata__', dtype: 'F32', shape: [4], data: d }])).toThrow(/cannot be written/);
    expect(() => writeSafetensors([{ name: 'w', dtype: 'F32', shape: [-4], data: d }])).toThrow(/non-negative/);
  });
});

describe('header-only parsing', () => {
  const big = writeSafetensors(
    [
      { name: 'emb', dtype: 'BF16', shape: [64, 32], data: new Float32Array(64 * 32) },
      { name: 'norm', dtype: 'F32', shape: [32], data: new Float32Array(32) },
    ],
    { format: 'pt' },
  );
  const n = Number(new DataView(big.buffer).getBigUint64(0, true));

  it('validates from the first 8 + n bytes and the file size', () => {
    expect(readSafetensorsHeaderLength(big.subarray(0, 8), FILE, big.length)).toBe(n);
    const head = big.slice(0, 8 + n);
    const st = parseSafetensorsHeader(head, FILE, big.length);
    expect(st.byteLength).toBe(big.length);
    expect(st.tensors.get('emb')).toEqual({ dtype: 'BF16', shape: [64, 32], begin: 0, end: 4096 });
    // without the size the result says what size the file must have
    expect(parseSafetensorsHeader(head, FILE).byteLength).toBe(big.length);
    // the size check still applies
    expectError(() => parseSafetensorsHeader(head, FILE, big.length + 1), 'MetadataIncompleteBuffer', /1 trailing bytes/);
    expectError(() => parseSafetensorsHeader(head, FILE, big.length - 1), 'MetadataIncompleteBuffer', /truncated/, /"norm"/);
  });

  it('says how many bytes it needs when given too few', () => {
    expectError(() => parseSafetensorsHeader(big.slice(0, 20), FILE, big.length), 'IncompleteHeader', new RegExp(`first ${8 + n} bytes`));
    expectError(() => parseSafetensorsHeader(big.slice(0, 5), FILE, big.length), 'IncompleteHeader', /first 8 bytes/);
  });

  it('reads a Blob with two small reads', async () => {
    const st = await parseSafetensorsBlobHeader(new Blob([big]), FILE);
    expect([...st.tensors.keys()]).toEqual(['emb', 'norm']);
    await expect(parseSafetensorsBlobHeader(new Blob([big, new Uint8Array(1)]), FILE)).rejects.toThrow(/trailing/);
  });

  it('refuses to read tensor data past the bytes given', () => {
    const head = big.slice(0, 8 + n);
    const st = parseSafetensorsHeader(head, FILE, big.length);
    expectError(() => getTensorF32(st, head, 'norm'), 'MetadataIncompleteBuffer', /"norm"/);
    expect(getTensorF32(st, big, 'norm').length).toBe(32);
  });
});

describe('validation, in the reference order', () => {
  it('1. file shorter than 8 bytes', () => {
    expectError(() => parse(new Uint8Array(7)), 'HeaderTooSmall', /7 bytes/);
    expectError(() => parse(new Uint8Array(0)), 'HeaderTooSmall');
  });

  it('2. header length over the limit or past the end of the file', () => {
    expectError(() => parse(craft('{}', 0, BigInt(MAX_HEADER_BYTES + 1))), 'HeaderTooLarge', /100000001/);
    expectError(() => parse(craft('{}', 0, (1n << 64n) - 1n)), 'HeaderTooLarge', /18446744073709551615/);
    expectError(() => parse(craft('{}', 0, 3n)), 'InvalidHeaderLength', /past the end/);
    // exactly the limit is allowed by the length check (then fails as past the end of this small file)
    expectError(() => parse(craft('{}', 0, BigInt(MAX_HEADER_BYTES))), 'InvalidHeaderLength');
  });

  it('3. header not UTF-8', () => {
    const h = new TextEncoder().encode('{"\u00e9":1}');
    h[2] = 0xff;
    expectError(() => parse(craft(h)), 'InvalidHeader', /UTF-8/);
    // an encoded surrogate (ED A0 80) is not UTF-8 either
    expectError(() => parse(craft(new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22])) ), 'InvalidHeader');
  });

  it('4. header not JSON', () => {
    expectError(() => parse(craft('{"a":')), 'InvalidHeaderDeserialization', /not valid JSON/);
    expectError(() => parse(craft('{} x')), 'InvalidHeaderDeserialization', /trailing characters/);
    expectError(() => parse(craft("{'a':1}")), 'InvalidHeaderDeserialization', /not valid JSON/);
    expectError(() => parse(craft('\ufeff{}')), 'InvalidHeaderDeserialization'); // a BOM is not JSON
    expectError(() => parse(craft('{"a\\ud800":1}')), 'InvalidHeaderDeserialization', /lone leading surrogate/);
    expectError(() => parse(craft('{"a\u0001":1}')), 'InvalidHeaderDeserialization', /control character/);
    expectError(() => parse(craft('{' + entry('w', 'F32', [1], 0, 4) + ',}', 4)), 'InvalidHeaderDeserialization');
  });

  it('4. header not of the expected shape', () => {
    expectError(() => parse(craft('[]')), 'InvalidHeaderDeserialization', /must be a JSON object, found an array/);
    expectError(() => parse(craft('{"w":[1]}')), 'InvalidHeaderDeserialization', /tensor "w": expected an object/);
    expectError(() => parse(craft('{' + entry('w', 'F128', [1], 0, 4) + '}', 4)), 'InvalidHeaderDeserialization', /"w"/, /unknown dtype "F128"/, /BF16/);
    expectError(() => parse(craft('{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}', 4)), 'InvalidHeaderDeserialization', /"w": dtype must be a string/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', 4)), 'InvalidHeaderDeserialization', /"w": shape\[0\] must be a non-negative integer, found -1/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","shape":[2, 1.5],"data_offsets":[0,4]}}', 4)), 'InvalidHeaderDeserialization', /"w": shape\[1\] must be an integer, found 1.5/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}', 4)), 'InvalidHeaderDeserialization', /must be an integer, found 1e0/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","shape":[-0],"data_offsets":[0,4]}}', 4)), 'InvalidHeaderDeserialization', /non-negative/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}', 4)), 'InvalidHeaderDeserialization', /"w": shape\[0\] must be a non-negative integer, found a string/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}', 4)), 'InvalidHeaderDeserialization', /"w": shape must be an array/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', 4)), 'InvalidHeaderDeserialization', /"w": data_offsets must be two integers/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', 4)), 'InvalidHeaderDeserialization', /"w": data_offsets must be two integers/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}', 4)), 'InvalidOffset', /"w": data_offsets begin 4 is after end 0/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","data_offsets":[0,4]}}', 4)), 'InvalidHeaderDeserialization', /"w": missing field shape/);
    expectError(() => parse(craft('{"w":{"shape":[1],"data_offsets":[0,4]}}', 4)), 'InvalidHeaderDeserialization', /"w": missing field dtype/);
    expectError(() => parse(craft('{"__metadata__":[]}')), 'InvalidHeaderDeserialization', /__metadata__ must be an object of string to string/);
    expectError(() => parse(craft('{"__metadata__":{"step":10}}')), 'InvalidHeaderDeserialization', /__metadata__ value of "step" must be a string/);
  });

  it('4. (JS) integers beyond 2^53 are refused, not rounded', () => {
    const e = expectError(
      () => parse(craft('{"w":{"dtype":"U8","shape":[9007199254740993],"data_offsets":[0,9007199254740993]}}')),
      'UnsafeInteger',
      /"w"/,
      /shape\[0\] 9007199254740993 is beyond 2\^53/,
    );
    expect(e.tensor).toBe('w');
    expectError(() => parse(craft('{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,18446744073709551616]}}')), 'UnsafeInteger', /data_offsets\[1\]/);
    expectError(() => parse(craft('{"w":{"dtype":"U8","shape":[' + '9'.repeat(10000) + '],"data_offsets":[0,0]}}')), 'UnsafeInteger');
    // 2^53 - 1 itself is fine syntactically (then fails the layout checks as it should)
    expectError(() => parse(craft('{"w":{"dtype":"U8","shape":[9007199254740991],"data_offsets":[0,0]}}')), 'TensorInvalidInfo');
  });

  it('4. (JS) duplicate keys are refused', () => {
    const w = entry('w', 'F32', [1], 0, 4);
    expectError(() => parse(craft(`{${w},${w}}`, 4)), 'DuplicateKey', /duplicate key "w" in the header/);
    expectError(() => parse(craft('{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}', 4)), 'DuplicateKey', /duplicate key "dtype" in tensor "w"/);
    expectError(() => parse(craft('{"__metadata__":{"a":"1","a":"2"}}')), 'DuplicateKey', /"a" in __metadata__/);
    expectError(() => parse(craft('{"__metadata__":{},"__metadata__":{}}')), 'DuplicateKey', /"__metadata__"/);
    // the same name spelled with an escape is the same key
    expectError(() => parse(craft(`{${w},${w.replace('"w"', '"\\u0077"')}}`, 4)), 'DuplicateKey', /"w"/);
  });

  it('4. (JS) __proto__ keys are refused', () => {
    expectError(() => parse(craft('{' + entry('__proto__', 'F32', [1], 0, 4) + '}', 4)), 'ForbiddenKey', /__proto__/);
    expectError(() => parse(craft('{"__metadata__":{"__proto__":"x"}}')), 'ForbiddenKey', /__metadata__/);
    expectError(() => parse(craft('{"w":{"__proto__":1,"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4)), 'ForbiddenKey', /tensor "w"/);
  });

  it('5. tensors must tile the data section: hole at the start', () => {
    const e = expectError(() => parse(craft('{' + entry('w', 'F32', [1], 4, 8) + '}', 8)), 'InvalidOffset', /"w"/, /first tensor but begins at 4, not 0/);
    expect(e.tensor).toBe('w');
  });

  it('5. hole between two tensors names both', () => {
    const h = '{' + entry('b', 'F32', [1], 8, 12) + ',' + entry('a', 'F32', [1], 0, 4) + '}';
    expectError(() => parse(craft(h, 12)), 'InvalidOffset', /hole of 4 bytes between tensor "a" \(ends at 4\) and tensor "b"/);
  });

  it('5. overlap names both', () => {
    const h = '{' + entry('a', 'F32', [2], 0, 8) + ',' + entry('b', 'F32', [1], 4, 8) + '}';
    expectError(() => parse(craft(h, 8)), 'InvalidOffset', /tensor "b" \(data_offsets \[4, 8\]\) overlaps tensor "a" \(data_offsets \[0, 8\]\) by 4 bytes/);
    // identical ranges overlap too
    const h2 = '{' + entry('a', 'F32', [1], 0, 4) + ',' + entry('b', 'F32', [1], 0, 4) + '}';
    expectError(() => parse(craft(h2, 4)), 'InvalidOffset', /overlaps/);
  });

  it('5. zero-sized tensors may share an offset', () => {
    const h = '{' + entry('e1', 'F32', [0], 0, 0) + ',' + entry('e2', 'F16', [3, 0], 0, 0) + ',' + entry('w', 'F32', [1], 0, 4) + '}';
    const st = parse(craft(h, 4));
    expect(st.tensors.size).toBe(3);
  });

  it('5. element count times dtype size must not overflow', () => {
    // 2^32 * 2^32 elements overflows 64 bits in the count
    const h = '{' + entry('huge', 'U8', [4294967296, 4294967296], 0, 0) + '}';
    expectError(() => parse(craft(h)), 'ValidationOverflow', /"huge": element count/);
    // 2^63 elements fit, 2^63 * 4 bytes does not
    const h2 = '{' + entry('big', 'F32', [2147483648, 2147483648, 2], 0, 0) + '}';
    expectError(() => parse(craft(h2)), 'ValidationOverflow', /"big": byte size/);
    // the reference folds left and stops at the overflow, even if a later dimension is 0
    const h3 = '{' + entry('z', 'U8', [4294967296, 4294967296, 0], 0, 0) + '}';
    expectError(() => parse(craft(h3)), 'ValidationOverflow', /"z"/);
  });

  it('5. byte range must match shape and dtype', () => {
    const h = '{' + entry('w', 'BF16', [2, 3], 0, 8) + '}';
    expectError(() => parse(craft(h, 8)), 'TensorInvalidInfo', /"w": shape \[2, 3\] in BF16 needs 12 bytes but data_offsets \[0, 8\] span 8/);
  });

  it('6. data section must end exactly at the end of the file', () => {
    const h = '{' + entry('w', 'F32', [2], 0, 8) + '}';
    expectError(() => parse(craft(h, 9)), 'MetadataIncompleteBuffer', /1 trailing bytes/);
    expectError(() => parse(craft(h, 7)), 'MetadataIncompleteBuffer', /truncated/, /"w"/);
    expectError(() => parse(craft('{}', 1)), 'MetadataIncompleteBuffer', /trailing/);
    expect(parse(craft(h, 8)).tensors.size).toBe(1);
  });

  it('reports the first problem in the reference order', () => {
    // not UTF-8 and trailing bytes: UTF-8 first
    const bad = new TextEncoder().encode('{"\u00e9":1}');
    bad[2] = 0xff;
    expectError(() => parse(craft(bad, 5)), 'InvalidHeader');
    // unknown dtype on one tensor and an overlap: the JSON shape first
    const h = '{' + entry('a', 'F32', [1], 0, 4) + ',' + entry('b', 'F32', [1], 0, 4) + ',' + entry('c', 'X', [1], 4, 8) + '}';
    expectError(() => parse(craft(h, 8)), 'InvalidHeaderDeserialization', /"c"/);
    // a size mismatch on the first tensor and a hole after it: the first tensor's checks first
    const h2 = '{' + entry('a', 'F32', [2], 0, 4) + ',' + entry('b', 'F32', [1], 8, 12) + '}';
    expectError(() => parse(craft(h2, 12)), 'TensorInvalidInfo', /"a"/);
    // a hole and trailing bytes: the hole first
    const h3 = '{' + entry('a', 'F32', [1], 4, 8) + '}';
    expectError(() => parse(craft(h3, 100)), 'InvalidOffset');
  });
});

describe('tolerated input (as the reference)', () => {
  it('accepts an empty header, whitespace, null metadata and ignores unknown fields', () => {
    expect(parse(craft('{}')).tensors.size).toBe(0);
    const st = parse(
      craft(' {\n\t"__metadata__" : null ,\r\n "w" : { "dtype" : "U8" , "extra" : {"nested": [1, 2.5, -3e4, true, null, "s"]}, "shape" : [ 2 ] , "data_offsets" : [ 0 , 2 ] } }   ', 2),
    );
    expect(st.metadata).toEqual({});
    expect(st.tensors.get('w')).toEqual({ dtype: 'U8', shape: [2], begin: 0, end: 2 });
  });

  it('does not hang or overflow the stack on deep nesting or long tokens', () => {
    const deep = '{"w":{"x":' + '['.repeat(200000) + ']'.repeat(200000) + ',"dtype":"U8","shape":[0],"data_offsets":[0,0]}}';
    expectError(() => parse(craft(deep)), 'InvalidHeaderDeserialization', /nesting deeper than 128/);
    const longName = 'n'.repeat(1_000_000);
    expect(parse(craft('{' + entry(longName, 'U8', [1], 0, 1) + '}', 1)).tensors.has(longName)).toBe(true);
    const unterminated = '{"' + 'a'.repeat(1_000_000);
    expectError(() => parse(craft(unterminated)), 'InvalidHeaderDeserialization', /unterminated string/);
  });
});
