/**
 * Snappy decompression with every length and offset checked, for Parquet pages: the importer's
 * page checks (./parquet-guard.ts) decompress with it, and hyparquet uses it as its Snappy codec.
 * Snappy's format: a varint preamble with the uncompressed length, then elements whose tag's low
 * two bits say a literal (0) or a copy with a 1-, 2- or 4-byte offset (1, 2, 3).
 */

/** Literal lengths up to this are in the tag itself; above it, the tag says how many length bytes follow (1-4). */
const TAG_LITERAL_MAX = 60;
/**
 * What byte i of a little-endian length is worth: a table, not 2 ** (8 * i), whose float result
 * would turn the lengths and the position into floats for the rest of the stream (several times slower).
 */
const BYTE_WEIGHT = [1, 256, 65536, 16777216];
/** A varint below 2^32 takes at most this many bytes. */
const VARINT32_MAX_BYTES = 5;

/**
 * Refuses a read of `k` bytes where `left` remain. (A plain function of its arguments, its message
 * built only on failure: a closure over the decoder's position would move that position off the
 * stack, and a message built per element would allocate, slowing every element down.)
 */
function need(left: number, k: number, at: number, what: string): void {
  if (left < k) throw new Error(`the Snappy data ends inside ${what === 'a literal' ? `a literal of ${k} bytes` : what} (at its byte ${at})`);
}

/**
 * Snappy decompression with every length and offset checked (hyparquet's decoder takes a 4-byte
 * literal length of 2^31 or more as negative and steps back, re-reading the stream for seconds or
 * forever). `size` is the page header's uncompressed size; the stream must produce exactly that.
 * Used by the checks here and, as a custom decompressor, by hyparquet itself.
 */
export function snappyDecompress(input: Uint8Array, size: number): Uint8Array {
  const n = input.length;
  let pos = 0;
  // Preamble: the uncompressed length as a varint (at most 5 bytes, below 2^32).
  let declared = 0;
  for (let i = 0; ; i++) {
    if (i === VARINT32_MAX_BYTES) throw new Error('the Snappy length varint is longer than 5 bytes');
    need(n - pos, 1, pos, 'its length');
    const b = input[pos++];
    declared += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) break;
  }
  if (declared !== size) throw new Error(`the Snappy data says it holds ${declared} bytes, but the page header says ${size}`);
  const out = new Uint8Array(size);
  let outPos = 0;
  while (pos < n) {
    const tag = input[pos++];
    const kind = tag & 3;
    if (kind === 0) {
      let len = (tag >> 2) + 1;
      if (len > TAG_LITERAL_MAX) {
        const k = len - TAG_LITERAL_MAX;
        need(n - pos, k, pos, 'a literal length');
        len = 1;
        for (let i = 0; i < k; i++) len += input[pos + i] * BYTE_WEIGHT[i];
        pos += k;
      }
      need(n - pos, len, pos, 'a literal');
      if (len > size - outPos) throw new Error(`a Snappy literal of ${len} bytes runs past the ${size} bytes of the page`);
      out.set(input.subarray(pos, pos + len), outPos);
      pos += len;
      outPos += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      need(n - pos, 1, pos, 'a copy');
      len = ((tag >> 2) & 7) + 4;
      offset = (tag >> 5) * 256 + input[pos];
      pos += 1;
    } else if (kind === 2) {
      need(n - pos, 2, pos, 'a copy');
      len = (tag >> 2) + 1;
      offset = input[pos] + input[pos + 1] * 256;
      pos += 2;
    } else {
      need(n - pos, 4, pos, 'a copy');
      len = (tag >> 2) + 1;
      offset = input[pos] + input[pos + 1] * 256 + input[pos + 2] * 65536 + input[pos + 3] * 16777216;
      pos += 4;
    }
    if (offset === 0 || offset > outPos) throw new Error(`a Snappy copy from ${offset} bytes back, at output byte ${outPos}`);
    if (len > size - outPos) throw new Error(`a Snappy copy of ${len} bytes runs past the ${size} bytes of the page`);
    // Byte by byte: a copy may overlap the bytes it writes (a run).
    for (let i = 0; i < len; i++, outPos++) out[outPos] = out[outPos - offset];
  }
  if (outPos !== size) throw new Error(`the Snappy data gives ${outPos} bytes, but the page header says ${size}`);
  return out;
}

