/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors; the format below and in
 * docs/ARCHITECTURE.md, "Backbones").
 *
 * Layout: an 8-byte little-endian unsigned header length `n`, then `n` bytes of UTF-8 JSON
 *   { "__metadata__"?: {string: string}, name: {"dtype", "shape": [..], "data_offsets": [begin, end]}, ... }
 * then the data section: little-endian row-major tensor bytes; `data_offsets` are relative to the
 * start of the data section (byte 8 + n of the file).
 *
 * Validation follows the reference implementation (the Rust crate's `read_metadata` and
 * `Metadata::validate`) in its order, each failure with its own code and a message naming the file
 * and, where there is one, the tensor:
 *   1. HeaderTooSmall            file shorter than 8 bytes
 *   2. HeaderTooLarge            header length over 100,000,000 bytes
 *      InvalidHeaderLength       header runs past the end of the file
 *   3. InvalidHeader             header is not UTF-8
 *   4. InvalidHeaderDeserialization  header is not JSON of the expected shape (known dtype, shape an
 *                                array of non-negative integers, data_offsets two non-negative
 *                                integers with begin <= end, `__metadata__` string to string),
 *                                checked in document order as the header is read, as serde does
 *   5. for each tensor in order of (begin, end):
 *      InvalidOffset             it does not begin where the previous one ended (hole / overlap)
 *      ValidationOverflow        element count * dtype size overflows 64 bits
 *      TensorInvalidInfo         that byte count differs from end - begin
 *   6. MetadataIncompleteBuffer  the data section does not end exactly at the end of the file
 * JavaScript extras, reported during step 4 where they occur: UnsafeInteger (an integer beyond
 * 2^53 - 1, found in the raw text since JSON.parse would round it), DuplicateKey (JSON.parse keeps
 * the last silently), ForbiddenKey (`__proto__`). The header is read by a small strict JSON reader
 * rather than JSON.parse, so these are seen; it is linear in the header size, nests at most 128
 * deep (serde_json's limit), and nothing is allocated from a length read out of the file.
 *
 * This file is the public API (header length, parsing, reading tensors, writing) and re-exports the
 * format's vocabulary (safetensors-format.ts); the strict header reader and the layout check are
 * safetensors-header.ts.
 */

import { decodeToF32, encodeFromF32, FLOAT_DTYPE_BYTES, type FloatDtype } from './dtypes';
import { HEADER_LENGTH_BYTES, MAX_HEADER_BYTES, q, SafetensorsError, type SafetensorsDtype, type SafetensorsFile, type SafetensorsTensorInfo } from './safetensors-format';
import { HeaderReader, validateLayout } from './safetensors-header';

export {
  MAX_HEADER_BYTES,
  SAFETENSORS_DTYPE_BYTES,
  SAFETENSORS_DTYPES,
  SafetensorsError,
  type SafetensorsDtype,
  type SafetensorsErrorCode,
  type SafetensorsFile,
  type SafetensorsTensorInfo,
} from './safetensors-format';

/** The writer aligns the data section to this many bytes (as the reference writer does). */
const DATA_ALIGNMENT = 8;

/** The header is padded with spaces up to the alignment. */
const HEADER_PADDING = 0x20;

// ---------------------------------------------------------------------------------------------
// Header length.
// ---------------------------------------------------------------------------------------------

/**
 * The header length `n` stored in the first 8 bytes (checks 1 and 2). With `fileSize` it also
 * checks that the header fits in the file. Read the first 8 + n bytes next.
 */
export function readSafetensorsHeaderLength(first8: Uint8Array, fileName = 'safetensors file', fileSize?: number): number {
  const available = fileSize ?? first8.byteLength;
  if (available < HEADER_LENGTH_BYTES) {
    throw new SafetensorsError('HeaderTooSmall', fileName, `file is ${available} bytes, shorter than the 8-byte header length`);
  }
  if (first8.byteLength < HEADER_LENGTH_BYTES) {
    throw new SafetensorsError('IncompleteHeader', fileName, `the header length needs the first 8 bytes, only ${first8.byteLength} were given`);
  }
  const view = new DataView(first8.buffer, first8.byteOffset, HEADER_LENGTH_BYTES);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError('HeaderTooLarge', fileName, `header length ${n} is over the limit of ${MAX_HEADER_BYTES} bytes`);
  }
  const len = Number(n);
  if (fileSize !== undefined && HEADER_LENGTH_BYTES + len > fileSize) {
    throw new SafetensorsError(
      'InvalidHeaderLength',
      fileName,
      `header length ${len} runs past the end of the file (${HEADER_LENGTH_BYTES} + ${len} = ${HEADER_LENGTH_BYTES + len} > ${fileSize} bytes)`,
    );
  }
  return len;
}

// ---------------------------------------------------------------------------------------------
// Public reader API.
// ---------------------------------------------------------------------------------------------

/**
 * Parses and validates the header of a safetensors file from its first bytes: `headerBytes` must
 * hold at least the first 8 + n bytes (n from {@link readSafetensorsHeaderLength}); more is fine.
 * With `fileSize` (the whole file's size) every check is made, the last one included (the data
 * section must end exactly at the end of the file); without it the checks that need the file's
 * size are skipped, and `byteLength` of the result says what size the file must have.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileName = 'safetensors file', fileSize?: number): SafetensorsFile {
  const n = readSafetensorsHeaderLength(headerBytes, fileName, fileSize);
  if (headerBytes.byteLength < HEADER_LENGTH_BYTES + n) {
    throw new SafetensorsError(
      'IncompleteHeader',
      fileName,
      `the header needs the first ${HEADER_LENGTH_BYTES + n} bytes of the file, only ${headerBytes.byteLength} were given`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes.subarray(HEADER_LENGTH_BYTES, HEADER_LENGTH_BYTES + n));
  } catch {
    throw new SafetensorsError('InvalidHeader', fileName, 'header is not valid UTF-8');
  }
  const { tensors: raw, metadata } = new HeaderReader(text, fileName).read();
  const { sorted, dataLength } = validateLayout(raw, fileName);
  const dataOffset = HEADER_LENGTH_BYTES + n;
  const byteLength = dataOffset + dataLength;
  if (fileSize !== undefined && byteLength !== fileSize) {
    const msg =
      byteLength < fileSize
        ? `${fileSize - byteLength} trailing bytes after the data section (tensors end at byte ${byteLength}, the file has ${fileSize})`
        : `file is truncated: tensors end at byte ${byteLength}, the file has only ${fileSize}` +
          (sorted.length > 0 ? ` (last tensor ${q(sorted[sorted.length - 1].name)})` : '');
    throw new SafetensorsError('MetadataIncompleteBuffer', fileName, msg, byteLength > fileSize ? sorted[sorted.length - 1]?.name : undefined);
  }
  const map = new Map<string, SafetensorsTensorInfo>();
  for (const t of sorted) map.set(t.name, { dtype: t.dtype, shape: t.shape, begin: t.begin, end: t.end });
  return { fileName, tensors: map, metadata, headerLength: n, dataOffset, dataLength, byteLength };
}

/** Parses and fully validates a whole safetensors file held in memory. */
export function parseSafetensors(bytes: Uint8Array, fileName = 'safetensors file'): SafetensorsFile {
  return parseSafetensorsHeader(bytes, fileName, bytes.byteLength);
}

/**
 * Reads and fully validates the header of a file without reading its data (two small reads: the
 * 8-byte length, then the header), so a multi-GB checkpoint can be checked before it is loaded.
 */
export async function parseSafetensorsBlobHeader(blob: Blob, fileName = 'safetensors file'): Promise<SafetensorsFile> {
  const first8 = new Uint8Array(await blob.slice(0, Math.min(HEADER_LENGTH_BYTES, blob.size)).arrayBuffer());
  const n = readSafetensorsHeaderLength(first8, fileName, blob.size);
  const head = new Uint8Array(await blob.slice(0, HEADER_LENGTH_BYTES + n).arrayBuffer());
  return parseSafetensorsHeader(head, fileName, blob.size);
}

function lookup(file: SafetensorsFile, name: string): SafetensorsTensorInfo {
  const t = file.tensors.get(name);
  if (t === undefined) {
    throw new SafetensorsError('TensorNotFound', file.fileName, `no tensor named ${q(name)} (the file has ${file.tensors.size} tensors)`, name);
  }
  return t;
}

/** The raw bytes of a tensor (a view into `bytes`, the whole file). */
export function getTensorBytes(file: SafetensorsFile, bytes: Uint8Array, name: string): Uint8Array {
  const t = lookup(file, name);
  const start = file.dataOffset + t.begin;
  const end = file.dataOffset + t.end;
  if (bytes.byteLength < end) {
    throw new SafetensorsError(
      'MetadataIncompleteBuffer',
      file.fileName,
      `tensor ${q(name)} ends at byte ${end} of the file but only ${bytes.byteLength} bytes were given`,
      name,
    );
  }
  return bytes.subarray(start, end);
}

/** True for the dtypes {@link getTensorF32} converts. */
export function isFloatDtype(dtype: SafetensorsDtype): dtype is FloatDtype {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}

/**
 * A tensor's values as a new Float32Array (exact for F32, F16 and BF16). Other dtypes (integers,
 * BOOL, F64, FP8) are refused: they are listed in `file.tensors` but are not weights we load.
 */
export function getTensorF32(file: SafetensorsFile, bytes: Uint8Array, name: string): Float32Array {
  const t = lookup(file, name);
  if (!isFloatDtype(t.dtype)) {
    throw new SafetensorsError(
      'NotFloatDtype',
      file.fileName,
      `tensor ${q(name)} has dtype ${t.dtype}; only F32, F16 and BF16 can be read as float32`,
      name,
    );
  }
  return decodeToF32(t.dtype, getTensorBytes(file, bytes, name));
}

// ---------------------------------------------------------------------------------------------
// Writer.
// ---------------------------------------------------------------------------------------------

export interface TensorToWrite {
  name: string;
  dtype: FloatDtype;
  shape: readonly number[];
  /** Row-major values; F16 and BF16 are rounded to nearest even. */
  data: Float32Array;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Writes a safetensors file: tensors laid out in the given order, `__metadata__` first when given,
 * and the header padded with spaces so the data section starts at a multiple of 8 bytes (as the
 * reference writer does).
 */
export function writeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>, fileName = 'safetensors file'): Uint8Array<ArrayBuffer> {
  const bad = (message: string, tensor?: string): never => {
    throw new SafetensorsError('InvalidTensor', fileName, message, tensor);
  };
  const entries: string[] = [];
  if (metadata !== undefined) {
    const pairs: string[] = [];
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') bad(`__metadata__ value of ${q(k)} must be a string`);
      if (k === '__proto__' || LONE_SURROGATE.test(k) || LONE_SURROGATE.test(v)) bad(`__metadata__ key ${q(k)} cannot be written`);
      pairs.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    entries.push(`"__metadata__":{${pairs.join(',')}}`);
  }
  const names = new Set<string>();
  const encoded: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || t.name === '__proto__' || LONE_SURROGATE.test(t.name)) bad(`tensor name ${q(t.name)} cannot be written`, t.name);
    if (names.has(t.name)) bad(`duplicate tensor name ${q(t.name)}`, t.name);
    names.add(t.name);
    if (!(t.dtype in FLOAT_DTYPE_BYTES)) bad(`tensor ${q(t.name)}: dtype ${String(t.dtype)} cannot be written (F32, F16 or BF16)`, t.name);
    let count = 1;
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) bad(`tensor ${q(t.name)}: shape [${t.shape.join(', ')}] must hold non-negative integers`, t.name);
      count *= d;
    }
    if (count !== t.data.length) {
      bad(`tensor ${q(t.name)}: shape [${t.shape.join(', ')}] has ${count} elements but data has ${t.data.length}`, t.name);
    }
    const bytes = encodeFromF32(t.dtype, t.data);
    encoded.push(bytes);
    const end = offset + bytes.byteLength;
    entries.push(
      `${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = new TextEncoder().encode(`{${entries.join(',')}}`);
  const n = json.byteLength + ((DATA_ALIGNMENT - (json.byteLength % DATA_ALIGNMENT)) % DATA_ALIGNMENT);
  if (n > MAX_HEADER_BYTES) bad(`header of ${n} bytes is over the limit of ${MAX_HEADER_BYTES}`);
  const out = new Uint8Array(HEADER_LENGTH_BYTES + n + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, HEADER_LENGTH_BYTES);
  out.fill(HEADER_PADDING, HEADER_LENGTH_BYTES + json.byteLength, HEADER_LENGTH_BYTES + n);
  let pos = HEADER_LENGTH_BYTES + n;
  for (const bytes of encoded) {
    out.set(bytes, pos);
    pos += bytes.byteLength;
  }
  return out;
}
