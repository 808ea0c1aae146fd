/**
 * Seeded pseudo-random numbers (mulberry32): runs, initialisations and tests are reproducible from
 * a seed. Not cryptographic.
 */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /** The generator's whole state, a 32-bit unsigned integer: restore() continues the same stream. */
  snapshot(): number {
    return this.state;
  }
  /** Puts back a state from snapshot(): the next numbers are those the snapshotted generator would give. */
  restore(state: number): void {
    if (!(Number.isInteger(state) && state >= 0 && state < 2 ** 32)) throw new Error(`RNG state ${state} is not a 32-bit unsigned integer`);
    this.state = state;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** `n` uniform values in [lo, hi), rounded to float32 so CPU and GPU start from identical inputs. */
  f32Array(n: number, lo = -1, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }
}
