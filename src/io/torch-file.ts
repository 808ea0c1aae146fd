/**
 * PyTorch checkpoint files written by `torch.save` (PyTorch >= 1.6, the zip serialization), such as
 * PEFT's and the official LoRAMoE code's `adapter_model.bin`, read without Python and without
 * running anything the file says.
 *
 * Layout: a zip archive (entries stored, uncompressed, 64-byte aligned) whose entries share one top
 * folder (`archive/` in recent PyTorch, the file's stem in older ones):
 *   <top>/data.pkl      the pickled object: for a state dict, {name: tensor}, each tensor a strided
 *                       view of a storage named by a persistent id (src/io/torch-pickle.ts)
 *   <top>/data/<key>    one storage's raw bytes: numel elements of its dtype, byte order below
 *   <top>/byteorder     "little" or "big" (absent in files before PyTorch 2.1: little)
 *   <top>/version, <top>/.data/...   format version and ids (not needed to read tensors)
 *
 * The zip directory is read here (end-of-central-directory record, zip64 when present, central
 * and local headers), every offset and size checked against the file; stored entries are views of
 * the input (no copy), deflated ones (a re-zipped file) are inflated by fflate into a buffer of the
 * declared size, refused past MAX_ENTRY_BYTES. Tensors must be contiguous row-major views that lie
 * inside their storage; the storage's size must be its numel. float16 and bfloat16 decode to
 * float32 exactly (src/io/dtypes.ts).
 */
import { inflateSync } from 'fflate';
import { decodeToF32, FLOAT_DTYPE_BYTES, type FloatDtype } from './dtypes';
import { type TorchTensorRef, unpickleStateDict } from './torch-pickle';
import { errorMessage } from '../util/errors';

/** Largest zip entry inflated (a deflated storage): 1 GiB. Stored entries are not copied. */
const MAX_ENTRY_BYTES = 1 << 30;

/** The first bytes of a zip archive (a local file header or an empty archive's end record). */
function isZipArchive(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && ((bytes[2] === 3 && bytes[3] === 4) || (bytes[2] === 5 && bytes[3] === 6));
}

/** A refusal of a torch file: names the file and, where there is one, the entry or tensor. */
export class TorchFileError extends Error {
  readonly fileName: string;
  constructor(fileName: string, message: string) {
    super(`${fileName}: ${message}`);
    this.name = 'TorchFileError';
    this.fileName = fileName;
  }
}

// ---------------------------------------------------------------------------------------------
// Zip directory.
// ---------------------------------------------------------------------------------------------

interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local header. */
  localOffset: number;
}

/** Reads the zip's central directory; every field is checked against the file's length. */
function readZipDirectory(bytes: Uint8Array, fail: (msg: string) => never): ZipEntry[] {
  const n = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (o: number) => view.getUint16(o, true);
  const u32 = (o: number) => view.getUint32(o, true);
  /** A u64 that must be a safe integer (offsets and sizes of a file in memory are far below). */
  const u64 = (o: number, what: string): number => {
    const hi = u32(o + 4);
    if (hi >= 0x200000) fail(`the zip's ${what} (${hi} * 2^32) is beyond 2^53`);
    return hi * 0x100000000 + u32(o);
  };
  if (n < 22) fail(`the file has ${n} bytes, too short for a zip archive's end record (22 bytes)`);
  // End of central directory: 22 bytes plus a comment of up to 65535 bytes, at the end of the file.
  let eocd = -1;
  for (let e = n - 22; e >= Math.max(0, n - 22 - 0xffff); e--) {
    if (u32(e) === 0x06054b50 && e + 22 + u16(e + 20) === n) {
      eocd = e;
      break;
    }
  }
  if (eocd < 0) fail('no zip end-of-central-directory record at the end of the file: the file is truncated or not a zip archive');
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // Zip64: a locator right before the end record points to the zip64 end record.
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== 0x07064b50) fail('the zip end record defers to zip64 but there is no zip64 locator before it');
    const z = u64(loc + 8, 'zip64 end record offset');
    if (z + 56 > loc || u32(z) !== 0x06064b50) fail(`the zip64 locator points to byte ${z}, where there is no zip64 end record`);
    count = u64(z + 32, 'entry count');
    cdSize = u64(z + 40, 'central directory size');
    cdOffset = u64(z + 48, 'central directory offset');
  }
  if (cdOffset + cdSize > eocd) fail(`the zip central directory (bytes ${cdOffset}..${cdOffset + cdSize}) runs past its end record at byte ${eocd}`);
  if (count * 46 > cdSize) fail(`the zip claims ${count} entries in a ${cdSize}-byte central directory (46 bytes each at least)`);
  const entries: ZipEntry[] = [];
  const names = new Set<string>();
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const cdEnd = cdOffset + cdSize;
  let o = cdOffset;
  for (let i = 0; i < count; i++) {
    if (o + 46 > cdEnd || u32(o) !== 0x02014b50) fail(`zip central directory entry ${i} at byte ${o} has no central header signature`);
    const flags = u16(o + 8);
    const method = u16(o + 10);
    let compressedSize = u32(o + 20);
    let size = u32(o + 24);
    const nameLen = u16(o + 28);
    const extraLen = u16(o + 30);
    const commentLen = u16(o + 32);
    let localOffset = u32(o + 42);
    const next = o + 46 + nameLen + extraLen + commentLen;
    if (next > cdEnd) fail(`zip central directory entry ${i} at byte ${o} runs past the directory's end`);
    const rawName = bytes.subarray(o + 46, o + 46 + nameLen);
    let name: string;
    try {
      name = flags & 0x800 ? utf8.decode(rawName) : latin1.decode(rawName);
    } catch {
      return fail(`zip entry ${i}'s name is not UTF-8`);
    }
    if (compressedSize === 0xffffffff || size === 0xffffffff || localOffset === 0xffffffff) {
      // Zip64 extended information (header id 1): the fields that are 0xffffffff, in this order.
      let x = o + 46 + nameLen;
      const xEnd = x + extraLen;
      let found = false;
      while (x + 4 <= xEnd) {
        const id = u16(x);
        const len = u16(x + 2);
        if (x + 4 + len > xEnd) break;
        if (id === 1) {
          let f = x + 4;
          const take = (what: string): number => {
            if (f + 8 > x + 4 + len) fail(`zip entry ${JSON.stringify(name)}: its zip64 field lacks the ${what}`);
            const v = u64(f, what);
            f += 8;
            return v;
          };
          if (size === 0xffffffff) size = take('size');
          if (compressedSize === 0xffffffff) compressedSize = take('compressed size');
          if (localOffset === 0xffffffff) localOffset = take('local header offset');
          found = true;
          break;
        }
        x += 4 + len;
      }
      if (!found) fail(`zip entry ${JSON.stringify(name)} defers its sizes to a zip64 field it does not have`);
    }
    if (names.has(name)) fail(`the zip holds two entries named ${JSON.stringify(name)}`);
    names.add(name);
    entries.push({ name, method, compressedSize, size, localOffset });
    o = next;
  }
  return entries;
}

/** The bytes of one entry: a view for stored entries, inflated for deflated ones. */
function entryBytes(bytes: Uint8Array, e: ZipEntry, fail: (msg: string) => never): Uint8Array {
  const n = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const what = `zip entry ${JSON.stringify(e.name)}`;
  if (e.localOffset + 30 > n || view.getUint32(e.localOffset, true) !== 0x04034b50) fail(`${what}: no local header at byte ${e.localOffset}`);
  const start = e.localOffset + 30 + view.getUint16(e.localOffset + 26, true) + view.getUint16(e.localOffset + 28, true);
  if (start + e.compressedSize > n) fail(`${what}: its ${e.compressedSize} bytes at byte ${start} run past the end of the ${n}-byte file (truncated)`);
  const raw = bytes.subarray(start, start + e.compressedSize);
  if (e.method === 0) {
    if (e.size !== e.compressedSize) fail(`${what} is stored with a size of ${e.size} but ${e.compressedSize} stored bytes`);
    return raw;
  }
  if (e.method !== 8) fail(`${what} uses zip compression method ${e.method}; only stored (0) and deflate (8) are read`);
  // Deflate expands at most 1032:1; a larger declared size is a damaged header, not a real entry.
  if (e.size > MAX_ENTRY_BYTES || e.size > 1032 * e.compressedSize + 1024) fail(`${what} declares ${e.size} bytes from ${e.compressedSize} deflated bytes`);
  let out: Uint8Array;
  try {
    out = inflateSync(raw, { out: new Uint8Array(e.size) });
  } catch (err) {
    return fail(`${what}: the deflated data is damaged (${errorMessage(err)})`);
  }
  if (out.length !== e.size) fail(`${what} inflates to ${out.length} bytes, its header says ${e.size}`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// State dicts.
// ---------------------------------------------------------------------------------------------

/** One tensor of a torch state dict, as the adapter loader needs it. */
interface TorchTensorInfo {
  dtype: FloatDtype;
  shape: number[];
  /** Where it lives: storage key, offset and strides, as pickled. */
  ref: TorchTensorRef;
}

export interface TorchStateDict {
  fileName: string;
  /** Tensors in the order the file lists them. */
  tensors: Map<string, TorchTensorInfo>;
  /** The tensor's values as float32 (a new array; float16 / bfloat16 decoded exactly). */
  read(name: string): Float32Array;
}

/**
 * Reads a `torch.save` state dict of float tensors. Everything is checked here (archive, pickle,
 * storages against their numel, each tensor inside its storage and contiguous), so `read` of a
 * listed tensor cannot fail.
 */
export function parseTorchFile(bytes: Uint8Array, fileName = 'pytorch file'): TorchStateDict {
  const fail = (msg: string): never => {
    throw new TorchFileError(fileName, msg);
  };
  if (!isZipArchive(bytes)) {
    if (bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] <= 5) {
      fail('this is the legacy PyTorch format (torch.save before 1.6, or _use_new_zipfile_serialization=False); re-save it with a recent torch.save');
    }
    const head = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    fail(`not a PyTorch zip archive (it starts with ${head || 'nothing'}; torch.save files start with "PK")`);
  }
  const entries = readZipDirectory(bytes, fail);
  const pkls = entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkls.length !== 1) {
    fail(
      pkls.length === 0
        ? `the archive has no <folder>/data.pkl (entries: ${entries.slice(0, 5).map((e) => JSON.stringify(e.name)).join(', ') || 'none'}); it is a zip but not a torch.save file`
        : `the archive has ${pkls.length} data.pkl entries (${pkls.map((e) => e.name).join(', ')})`,
    );
  }
  const top = pkls[0].name.slice(0, -'data.pkl'.length);
  const byName = new Map(entries.map((e) => [e.name, e]));

  let bigEndian = false;
  const order = byName.get(`${top}byteorder`);
  if (order) {
    const text = new TextDecoder('latin1').decode(entryBytes(bytes, order, fail)).trim();
    if (text !== 'little' && text !== 'big') fail(`${order.name} says ${JSON.stringify(text.slice(0, 40))}, expected "little" or "big"`);
    bigEndian = text === 'big';
  }

  const refs = unpickleStateDict(entryBytes(bytes, pkls[0], fail), `${fileName}: ${pkls[0].name}`);

  // Storages: each key read once, its size checked against the numel every reference gives.
  const storages = new Map<string, { bytes: Uint8Array; dtype: FloatDtype; numel: number; typeName: string }>();
  const tensors = new Map<string, TorchTensorInfo>();
  for (const [name, ref] of refs) {
    const s = ref.storage;
    const what = `tensor ${JSON.stringify(name)}`;
    let st = storages.get(s.key);
    if (!st) {
      const e = byName.get(`${top}data/${s.key}`);
      if (!e) return fail(`${what}: its storage ${JSON.stringify(s.key)} (entry ${top}data/${s.key}) is not in the archive`);
      const data = entryBytes(bytes, e, fail);
      const want = s.numel * FLOAT_DTYPE_BYTES[s.dtype];
      if (data.length !== want) fail(`${what}: storage ${JSON.stringify(s.key)} has ${data.length} bytes, but ${s.numel} elements of ${s.typeName} take ${want}`);
      st = { bytes: data, dtype: s.dtype, numel: s.numel, typeName: s.typeName };
      storages.set(s.key, st);
    } else if (st.dtype !== s.dtype || st.numel !== s.numel) {
      fail(`${what}: storage ${JSON.stringify(s.key)} is ${s.numel} x ${s.typeName} here but ${st.numel} x ${st.typeName} for an earlier tensor`);
    }
    // Elements: the product of the sizes, checked to stay a safe integer.
    let numel = 1;
    for (const d of ref.shape) {
      numel *= d;
      if (!Number.isSafeInteger(numel)) fail(`${what}: size [${ref.shape.join(', ')}] has more than 2^53 elements`);
    }
    if (numel > 0) {
      // Contiguous row-major: stride[i] = product of the sizes after i (dimensions of size 1 are free).
      let want = 1;
      for (let i = ref.shape.length - 1; i >= 0; i--) {
        if (ref.shape[i] !== 1 && ref.stride[i] !== want) {
          fail(
            `${what} has size [${ref.shape.join(', ')}] with stride [${ref.stride.join(', ')}], not a contiguous row-major layout ` +
              `(stride [${contiguousStrides(ref.shape).join(', ')}]); save it with .contiguous()`,
          );
        }
        want *= ref.shape[i];
      }
      if (ref.offset + numel > st.numel) fail(`${what}: elements ${ref.offset}..${ref.offset + numel} lie past the end of its ${st.numel}-element storage ${JSON.stringify(s.key)}`);
    }
    tensors.set(name, { dtype: s.dtype, shape: [...ref.shape], ref });
  }

  const read = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t) return fail(`no tensor ${JSON.stringify(name)}`);
    const st = storages.get(t.ref.storage.key)!;
    const es = FLOAT_DTYPE_BYTES[st.dtype];
    const numel = t.shape.reduce((a, b) => a * b, 1);
    let raw = st.bytes.subarray(t.ref.offset * es, (t.ref.offset + numel) * es);
    if (bigEndian) raw = byteSwapped(raw, es);
    return decodeToF32(st.dtype, raw);
  };
  return { fileName, tensors, read };
}

function contiguousStrides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i];
  }
  return out;
}

/** A copy with each `size`-byte element's bytes reversed (big-endian storage to little-endian). */
function byteSwapped(raw: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += size) for (let j = 0; j < size; j++) out[i + j] = raw[i + size - 1 - j];
  return out;
}
