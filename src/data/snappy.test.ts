/**
 * The checked Snappy decoder on hand-assembled streams: each element kind decodes to the bytes
 * written down here, and each kind of damage is refused with its own message.
 */
import { describe, expect, it } from 'vitest';
import { snappyDecompress } from './snappy';

/** Bytes 0..63 as one literal with a one-byte length (tag 60 << 2: "the length - 1 follows"). */
const LITERAL_64 = [0xf0, 63, ...Array.from({ length: 64 }, (_, i) => i)];
/** A 1-byte-offset copy: 8 bytes from 2 back (it overlaps what it writes: a run of 62, 63). Tag (8 - 4) << 2 | 1. */
const RUN_8 = [0x11, 2];
/** A 2-byte-offset copy: 3 bytes from 72 back (the first three). Tag (3 - 1) << 2 | 2, offset 72 little-endian. */
const FAR_3 = [0x0a, 72, 0];

describe('snappyDecompress', () => {
  it('decodes literals, overlapping copies and 2-byte-offset copies', () => {
    const out = snappyDecompress(Uint8Array.from([75, ...LITERAL_64, ...RUN_8, ...FAR_3]), 75);
    expect([...out]).toEqual([...Array.from({ length: 64 }, (_, i) => i), 62, 63, 62, 63, 62, 63, 62, 63, 0, 1, 2]);
  });

  it('refuses damaged streams, each with what is wrong', () => {
    const bad = (bytes: number[], size: number): string => {
      try {
        snappyDecompress(Uint8Array.from(bytes), size);
        return 'decoded';
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(bad([72, ...LITERAL_64, ...RUN_8], 70)).toBe('the Snappy data says it holds 72 bytes, but the page header says 70');
    expect(bad([72, ...LITERAL_64.slice(0, 40)], 72)).toBe('the Snappy data ends inside a literal of 64 bytes (at its byte 3)');
    expect(bad([72, ...LITERAL_64, 0x11], 72)).toBe('the Snappy data ends inside a copy (at its byte 68)');
    expect(bad([72, ...LITERAL_64, 0x11, 0], 72)).toBe('a Snappy copy from 0 bytes back, at output byte 64');
    expect(bad([66, ...LITERAL_64, ...RUN_8], 66)).toBe('a Snappy copy of 8 bytes runs past the 66 bytes of the page');
    expect(bad([70, ...LITERAL_64], 70)).toBe('the Snappy data gives 64 bytes, but the page header says 70');
    expect(bad([0x80, 0x80, 0x80, 0x80, 0x80, 0], 1)).toBe('the Snappy length varint is longer than 5 bytes');
  });
});
