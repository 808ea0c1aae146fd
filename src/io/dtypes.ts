/**
 * Float formats of checkpoint files: F32, F16 (IEEE binary16) and BF16 (bfloat16), all little-endian.
 *
 * Decoding to float32 is exact for all three (every f16 and bf16 value is a float32 value):
 * - BF16 is the top 16 bits of a float32, so decoding is a 16-bit shift of the bit pattern.
 * - F16 has 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits; exponent 0 is zero or
 *   subnormal (m * 2^-24), exponent 31 is infinity (m = 0) or NaN (m != 0). Decoding goes through
 *   a 65536-entry table of float32 bit patterns built on first use.
 * NaN payloads are carried over bit for bit (the top 10 / 7 payload bits become the top float32
 * payload bits), since the conversions work on bit patterns, never on JS numbers.
 *
 * Encoding float32 to F16 or BF16 rounds to nearest, ties to even (as PyTorch's `.to()` does);
 * values past the largest finite value round to infinity, NaN stays NaN (made quiet).
 */

/** The float formats the playground reads and writes. */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

/** Bytes per element of each float format. */
export const FLOAT_DTYPE_BYTES: Readonly<Record<FloatDtype, number>> = { F32: 4, F16: 2, BF16: 2 };

/** True on little-endian hosts (every WebGPU platform in practice); a DataView path covers the rest. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// One scratch word to move between float32 values and their bit patterns.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The IEEE bit pattern of `x` rounded to float32 (NaN gives the engine's canonical NaN). */
export function f32ToBits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The float32 value whose bit pattern is `bits`. */
export function bitsToF32(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0];
}

// ---------------------------------------------------------------------------------------------
// Scalar conversions on bit patterns.
// ---------------------------------------------------------------------------------------------

/** Float32 bit pattern of the binary16 value with bit pattern `h` (exact). */
function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (man << 13)) >>> 0; // inf / NaN (payload kept)
  if (exp !== 0) return (sign | ((exp - 15 + 127) << 23) | (man << 13)) >>> 0; // normal
  if (man === 0) return sign >>> 0; // +-0
  // Subnormal: man * 2^-24. Shift the mantissa up until its leading 1 reaches bit 10 (the implicit
  // bit); every shift lowers the exponent by one.
  let m = man;
  let e = -14;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | ((e + 127) << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** The binary16 value with bit pattern `h`, as a JS number (exact). */
export function f16BitsToF32(h: number): number {
  return bitsToF32(f16BitsToF32Bits(h & 0xffff));
}

/** The bfloat16 value with bit pattern `b`, as a JS number (exact). */
export function bf16BitsToF32(b: number): number {
  return bitsToF32((b & 0xffff) << 16);
}

/** bfloat16 bit pattern of the float32 with bit pattern `u`, rounded to nearest even. */
export function f32BitsToBf16Bits(u: number): number {
  u >>>= 0;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) {
    return ((u >>> 16) | 0x40) & 0xffff; // NaN: keep sign and top payload, set the quiet bit
  }
  // Adding 0x7fff (+1 when the kept lowest bit is odd) carries into bit 16 exactly when the
  // dropped half is above the midpoint, or at it with an odd kept part. Overflow gives infinity.
  const bias = 0x7fff + ((u >>> 16) & 1);
  return ((u + bias) >>> 16) & 0xffff;
}

/** binary16 bit pattern of the float32 with bit pattern `u`, rounded to nearest even. */
export function f32BitsToF16Bits(u: number): number {
  u >>>= 0;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const man = u & 0x7fffff;
  if (exp === 0xff) return man === 0 ? sign | 0x7c00 : sign | 0x7e00 | (man >>> 13); // inf / quiet NaN
  const e = exp - 127; // unbiased exponent (f32 subnormals give -127: they all round to zero)
  if (e > 15) return sign | 0x7c00; // at least 2^16: past the f16 range
  if (e >= -14) {
    // Normal f16: keep 10 of the 23 mantissa bits. A carry out of the mantissa correctly bumps the
    // exponent, and from exponent 30 to 31 it gives infinity (65520 and up).
    let h = ((e + 15) << 10) | (man >>> 13);
    const rest = man & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
    return sign | h;
  }
  if (e < -25) return sign; // below half the smallest subnormal (2^-25): rounds to zero
  // Subnormal f16 (units of 2^-24). The full significand (with its implicit bit) is
  // sig * 2^(e-23) = sig * 2^(e+1) units, a right shift by -(e+1), between 14 and 24.
  const sig = man | 0x800000;
  const shift = -(e + 1);
  let q = sig >>> shift;
  const rest = sig & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (q & 1) === 1)) q++; // may reach 0x400, the smallest normal
  return sign | q;
}

/** binary16 bit pattern nearest (ties to even) to `x` after rounding `x` to float32. */
export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32ToBits(x));
}

/** bfloat16 bit pattern nearest (ties to even) to `x` after rounding `x` to float32. */
export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32ToBits(x));
}

// ---------------------------------------------------------------------------------------------
// Array conversions.
// ---------------------------------------------------------------------------------------------

let f16Table: Uint32Array | null = null;

/** float32 bit patterns of all 65536 binary16 values, built once (256 KiB). */
function f16ToF32Table(): Uint32Array {
  if (f16Table === null) {
    const t = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32Bits(h);
    f16Table = t;
  }
  return f16Table;
}

/** The bytes of `src` as a Uint16Array of little-endian words (copied only when misaligned or big-endian). */
function littleEndianU16(src: Uint8Array): Uint16Array {
  const n = src.byteLength >>> 1;
  if (HOST_LITTLE_ENDIAN) {
    if (src.byteOffset % 2 === 0) return new Uint16Array(src.buffer, src.byteOffset, n);
    return new Uint16Array(src.slice(0, n * 2).buffer);
  }
  const out = new Uint16Array(n);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  for (let i = 0; i < n; i++) out[i] = view.getUint16(2 * i, true);
  return out;
}

function checkWhole(bytes: Uint8Array, size: number, dtype: FloatDtype): void {
  if (bytes.byteLength % size !== 0) {
    throw new Error(`${dtype} data of ${bytes.byteLength} bytes is not a whole number of ${size}-byte elements`);
  }
}

/** Decode little-endian F32 bytes (any alignment) into a new Float32Array. */
export function decodeF32(bytes: Uint8Array): Float32Array {
  checkWhole(bytes, 4, 'F32');
  const n = bytes.byteLength / 4;
  if (HOST_LITTLE_ENDIAN) return new Float32Array(bytes.slice().buffer, 0, n);
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) bits[i] = view.getUint32(4 * i, true);
  return out;
}

/** Decode little-endian F16 bytes (any alignment) into a new Float32Array, exactly. */
export function decodeF16(bytes: Uint8Array): Float32Array {
  checkWhole(bytes, 2, 'F16');
  const src = littleEndianU16(bytes);
  const table = f16ToF32Table();
  const bits = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) bits[i] = table[src[i]];
  return new Float32Array(bits.buffer);
}

/** Decode little-endian BF16 bytes (any alignment) into a new Float32Array, exactly. */
export function decodeBF16(bytes: Uint8Array): Float32Array {
  checkWhole(bytes, 2, 'BF16');
  const src = littleEndianU16(bytes);
  const bits = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return new Float32Array(bits.buffer);
}

/** Decode little-endian bytes of a float format into a new Float32Array, exactly. */
export function decodeToF32(dtype: FloatDtype, bytes: Uint8Array): Float32Array {
  switch (dtype) {
    case 'F32':
      return decodeF32(bytes);
    case 'F16':
      return decodeF16(bytes);
    case 'BF16':
      return decodeBF16(bytes);
  }
}

/**
 * Encode float32 values as little-endian bytes of a float format (F16 and BF16 rounded to nearest
 * even). The result is a new, standalone Uint8Array.
 */
export function encodeFromF32(dtype: FloatDtype, values: Float32Array): Uint8Array {
  const n = values.length;
  const srcBits = new Uint32Array(values.buffer, values.byteOffset, n);
  if (dtype === 'F32') {
    const out = new Uint8Array(4 * n);
    if (HOST_LITTLE_ENDIAN) {
      out.set(new Uint8Array(values.buffer, values.byteOffset, 4 * n));
    } else {
      const view = new DataView(out.buffer);
      for (let i = 0; i < n; i++) view.setUint32(4 * i, srcBits[i], true);
    }
    return out;
  }
  const convert = dtype === 'F16' ? f32BitsToF16Bits : f32BitsToBf16Bits;
  const half = new Uint16Array(n);
  for (let i = 0; i < n; i++) half[i] = convert(srcBits[i]);
  if (HOST_LITTLE_ENDIAN) return new Uint8Array(half.buffer);
  const out = new Uint8Array(2 * n);
  const view = new DataView(out.buffer);
  for (let i = 0; i < n; i++) view.setUint16(2 * i, half[i], true);
  return out;
}

/** Round every value to the nearest F16 / BF16 value (ties to even), as a float32 array. */
export function roundToDtype(dtype: FloatDtype, values: Float32Array): Float32Array {
  if (dtype === 'F32') return values.slice();
  return decodeToF32(dtype, encodeFromF32(dtype, values));
}
