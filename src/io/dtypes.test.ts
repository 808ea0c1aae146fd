import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  bitsToF32,
  decodeBF16,
  decodeF16,
  decodeF32,
  encodeFromF32,
  f16BitsToF32,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBits,
  f32ToBf16Bits,
  f32ToF16Bits,
  roundToDtype,
} from './dtypes';
import { Rng } from '../util/random';

/** The binary16 value of bit pattern h from its definition, in float64 arithmetic. */
function f16ByDefinition(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const isNegZero = (x: number) => x === 0 && 1 / x < 0;

describe('f16 decoding', () => {
  it('matches the definition for all 65536 bit patterns (subnormals, inf, nan, -0)', () => {
    for (let h = 0; h < 65536; h++) {
      const got = f16BitsToF32(h);
      const want = f16ByDefinition(h);
      if (Number.isNaN(want)) expect(got).toBeNaN();
      else if (got !== want || isNegZero(got) !== isNegZero(want)) throw new Error(`h=0x${h.toString(16)}: ${got} != ${want}`);
    }
  });

  it('known values', () => {
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0xc000)).toBe(-2);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14); // smallest normal
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    expect(isNegZero(f16BitsToF32(0x8000))).toBe(true);
  });

  it('keeps NaN payloads in the float32 bit pattern', () => {
    const bytes = new Uint8Array([0x01, 0x7c, 0x55, 0xfd]); // 0x7c01 (signalling), 0xfd55
    const bits = new Uint32Array(decodeF16(bytes).buffer);
    expect(bits[0]).toBe(0x7f802000);
    expect(bits[1]).toBe(0xffaaa000);
  });
});

describe('bf16 decoding', () => {
  it('is the top 16 bits of a float32', () => {
    for (let b = 0; b < 65536; b += 7) {
      expect(f32ToBits(bf16BitsToF32(b)) === b << 16 >>> 0 || Number.isNaN(bf16BitsToF32(b))).toBe(true);
    }
    expect(bf16BitsToF32(0x3f80)).toBe(1);
    expect(bf16BitsToF32(0xc0a0)).toBe(-5);
    expect(bf16BitsToF32(0x7f80)).toBe(Infinity);
    expect(bf16BitsToF32(0x0001)).toBe(2 ** -133); // float32 subnormal
  });

  it('array decoding is bit-exact, NaN payloads included', () => {
    const bytes = new Uint8Array([0x80, 0x3f, 0x81, 0x7f, 0x00, 0x80]);
    const bits = new Uint32Array(decodeBF16(bytes).buffer);
    expect(Array.from(bits)).toEqual([0x3f800000, 0x7f810000, 0x80000000]);
  });
});

describe('array decoding', () => {
  it('works at unaligned offsets', () => {
    const vals = new Float32Array([1.5, -2.25, 3e-40, Infinity]);
    const raw = new Uint8Array(vals.buffer);
    const padded = new Uint8Array(raw.length + 1);
    padded.set(raw, 1);
    expect(Array.from(decodeF32(padded.subarray(1)))).toEqual(Array.from(vals));

    const half = encodeFromF32('F16', vals);
    const p2 = new Uint8Array(half.length + 1);
    p2.set(half, 1);
    expect(Array.from(decodeF16(p2.subarray(1)))).toEqual(Array.from(decodeF16(half)));
    const bf = encodeFromF32('BF16', vals);
    const p3 = new Uint8Array(bf.length + 1);
    p3.set(bf, 1);
    expect(Array.from(decodeBF16(p3.subarray(1)))).toEqual(Array.from(decodeBF16(bf)));
  });

  it('refuses a byte count that is not whole elements', () => {
    expect(() => decodeF32(new Uint8Array(6))).toThrow(/not a whole number of 4-byte/);
    expect(() => decodeF16(new Uint8Array(3))).toThrow(/F16 data of 3 bytes/);
  });

  it('F32 is little-endian', () => {
    expect(Array.from(decodeF32(new Uint8Array([0, 0, 0x80, 0x3f])))).toEqual([1]);
  });
});

/** Reference rounding: the nearest of the candidates in exact float64 arithmetic, ties to even. */
function nearestEven(x: number, lo: number, hi: number, loBits: number): 'lo' | 'hi' {
  const dl = x - lo;
  const dh = hi - x;
  if (dl < dh) return 'lo';
  if (dh < dl) return 'hi';
  return (loBits & 1) === 0 ? 'lo' : 'hi';
}

describe('float32 -> f16 (round to nearest even)', () => {
  it('round-trips every f16 value', () => {
    for (let h = 0; h < 65536; h++) {
      const x = f16BitsToF32(h);
      if (Number.isNaN(x)) {
        const back = f32ToF16Bits(x);
        expect((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0).toBe(true);
      } else if (f32ToF16Bits(x) !== h) throw new Error(`h=0x${h.toString(16)} -> ${f32ToF16Bits(x).toString(16)}`);
    }
  });

  it('rounds the midpoint and its float32 neighbours between every pair of adjacent positive f16 values', () => {
    // 0x7bff (65504) has no finite neighbour above; its midpoint 65520 is checked with the specials.
    for (let h = 0; h < 0x7bff; h++) {
      const lo = f16BitsToF32(h);
      const hi = f16BitsToF32(h + 1);
      const mid = (lo + hi) / 2; // exact in float32 (f16 has 11 significant bits)
      const midBits = f32ToBits(mid);
      const even = h % 2 === 0 ? h : h + 1;
      if (f32BitsToF16Bits(midBits) !== even) throw new Error(`tie at 0x${h.toString(16)}`);
      if (f32BitsToF16Bits(midBits - 1) !== h) throw new Error(`below tie at 0x${h.toString(16)}`);
      if (f32BitsToF16Bits(midBits + 1) !== h + 1) throw new Error(`above tie at 0x${h.toString(16)}`);
      if (f32BitsToF16Bits(midBits | 0x80000000) !== (even | 0x8000)) throw new Error(`negative tie at 0x${h.toString(16)}`);
    }
  });

  it('matches exact nearest-even rounding on random float32 values in the f16 range', () => {
    const rng = new Rng(1);
    for (let k = 0; k < 20000; k++) {
      const x = Math.fround((rng.next() * 2 - 1) * 2 ** rng.uniform(-26, 16));
      const h = f32ToF16Bits(x);
      const v = f16BitsToF32(h);
      // candidates: v and its neighbour on the other side of x
      const ax = Math.abs(x);
      const hb = h & 0x7fff;
      const av = Math.abs(v);
      if (av === ax) continue;
      const loBits = av < ax ? hb : hb - 1;
      const lo = f16BitsToF32(loBits);
      const hi = f16BitsToF32(loBits + 1);
      expect(lo <= ax && ax <= hi).toBe(true);
      const pick = nearestEven(ax, lo, hi, loBits);
      expect(hb).toBe(pick === 'lo' ? loBits : loBits + 1);
    }
  });

  it('overflow, underflow, specials', () => {
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519.99)).toBe(0x7bff); // below the midpoint 65520
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // midpoint to the (even) next step: infinity
    expect(f32ToF16Bits(1e10)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e10)).toBe(0xfc00);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal: even is 0
    expect(f32ToF16Bits(Math.fround(2 ** -25 * 1.0001))).toBe(1);
    expect(f32ToF16Bits(3 * 2 ** -26)).toBe(1);
    expect(f32ToF16Bits(2 ** -30)).toBe(0);
    expect(f32ToF16Bits(-(2 ** -30))).toBe(0x8000);
    expect(f32ToF16Bits(bitsToF32(1))).toBe(0); // float32 subnormal
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    const nan = f32ToF16Bits(NaN);
    expect((nan & 0x7c00) === 0x7c00 && (nan & 0x3ff) !== 0).toBe(true);
    // the largest subnormal rounds up into the smallest normal
    expect(f32ToF16Bits(Math.fround((1023.75) * 2 ** -24))).toBe(0x0400);
  });
});

describe('float32 -> bf16 (round to nearest even)', () => {
  it('rounds ties to even and keeps exact values', () => {
    expect(f32BitsToBf16Bits(0x3f800000)).toBe(0x3f80);
    expect(f32BitsToBf16Bits(0x3f808000)).toBe(0x3f80); // tie, 0x3f80 even
    expect(f32BitsToBf16Bits(0x3f818000)).toBe(0x3f82); // tie, 0x3f81 odd -> up
    expect(f32BitsToBf16Bits(0x3f808001)).toBe(0x3f81);
    expect(f32BitsToBf16Bits(0x3f807fff)).toBe(0x3f80);
    expect(f32BitsToBf16Bits(0xbf818000)).toBe(0xbf82);
    expect(f32BitsToBf16Bits(0x7f7fffff)).toBe(0x7f80); // max float32 -> inf
    expect(f32BitsToBf16Bits(0x7f800000)).toBe(0x7f80);
    expect(f32BitsToBf16Bits(0xff800000)).toBe(0xff80);
    const nan = f32BitsToBf16Bits(0x7f800001); // NaN with only low payload bits stays NaN
    expect((nan & 0x7f80) === 0x7f80 && (nan & 0x7f) !== 0).toBe(true);
    expect(f32ToBf16Bits(-0)).toBe(0x8000);
  });

  it('matches exact nearest-even rounding on random float32 bit patterns', () => {
    const rng = new Rng(2);
    for (let k = 0; k < 20000; k++) {
      const u = (rng.int(0x7f7f) << 16) | rng.int(0x10000); // finite positive, below the max bf16
      const x = bitsToF32(u);
      const lo = bf16BitsToF32(u >>> 16);
      const hi = bf16BitsToF32((u >>> 16) + 1);
      const pick = nearestEven(x, lo, hi, u >>> 16);
      expect(f32BitsToBf16Bits(u)).toBe(pick === 'lo' ? u >>> 16 : (u >>> 16) + 1);
    }
  });
});

describe('encode / roundToDtype', () => {
  it('encode then decode is exact for values already representable', () => {
    const rng = new Rng(3);
    const vals = rng.f32Array(1000, -4, 4);
    for (const dtype of ['F16', 'BF16'] as const) {
      const rounded = roundToDtype(dtype, vals);
      const again = roundToDtype(dtype, rounded);
      expect(new Uint32Array(again.buffer)).toEqual(new Uint32Array(rounded.buffer));
    }
    const f32 = roundToDtype('F32', vals);
    expect(f32).toEqual(vals);
    expect(f32).not.toBe(vals);
  });

  it('encodes little-endian', () => {
    expect(Array.from(encodeFromF32('F16', new Float32Array([1])))).toEqual([0x00, 0x3c]);
    expect(Array.from(encodeFromF32('BF16', new Float32Array([1])))).toEqual([0x80, 0x3f]);
    expect(Array.from(encodeFromF32('F32', new Float32Array([1])))).toEqual([0, 0, 0x80, 0x3f]);
  });
});
