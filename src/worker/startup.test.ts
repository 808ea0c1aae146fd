/** The start's progress (./startup.ts): tokenising in steps, kernels compiled out of those a build of the same shape needed before. */
import { describe, expect, it } from 'vitest';
import type { StartupProgress } from './protocol';
import { type ObservedCache, StartupReporter } from './startup';

/** A pipeline cache's bookkeeping without a GPU: get() compiles a key it lacks. */
class FakeCache implements ObservedCache {
  readonly keys = new Set<string>();
  onGet: ((key: string, compiled: boolean) => void) | null = null;
  has(key: string): boolean {
    return this.keys.has(key);
  }
  get(key: string): void {
    const compiled = !this.keys.has(key);
    this.keys.add(key);
    this.onGet?.(key, compiled);
  }
}

function reporter(): { r: StartupReporter; posted: StartupProgress[] } {
  const posted: StartupProgress[] = [];
  return { r: new StartupReporter((p) => posted.push(p)), posted };
}

describe('start-up progress', () => {
  it('posts phases only while a start is under way', () => {
    const { r, posted } = reporter();
    r.phase('uploading');
    expect(posted).toEqual([]);
    r.begin();
    expect(r.starting).toBe(true);
    r.phase('uploading', 0, 1);
    r.end();
    r.phase('firstStep');
    expect(posted).toEqual([{ phase: 'uploading', done: 0, total: 1 }]);
  });

  it('tokenises in at most 20 steps besides the first and the last', () => {
    const { r, posted } = reporter();
    r.begin();
    expect(r.tokenise(3, (i) => i * 10)).toEqual([0, 10, 20]);
    expect(posted.map((p) => p.done)).toEqual([0, 1, 2, 3]);
    posted.length = 0;
    r.tokenise(100, (i) => i);
    // One event per 5 records: 0, 5, ..., 95, then 100.
    expect(posted.map((p) => p.done)).toEqual([0, ...Array.from({ length: 19 }, (_, i) => 5 * (i + 1)), 100]);
    expect(posted.every((p) => p.phase === 'tokenising' && p.total === 100)).toBe(true);
  });

  it('counts compiles without a total the first time, and out of what the shape needs after', () => {
    const { r, posted } = reporter();
    const cache = new FakeCache();
    cache.keys.add('c');
    // First build of shape S: asks for a, b, c; compiles a and b. No total is known yet.
    r.build(cache, 'S', () => ['a', 'b', 'c'].forEach((k) => cache.get(k)));
    expect(posted).toEqual([
      { phase: 'compiling', done: 1, total: 0 },
      { phase: 'compiling', done: 2, total: 0 },
    ]);
    expect(cache.onGet).toBeNull();
    // A new cache (a new device) holding only b: the next build of S has a and c to compile.
    posted.length = 0;
    const fresh = new FakeCache();
    fresh.keys.add('b');
    const out = r.build(fresh, 'S', () => {
      ['a', 'b', 'c'].forEach((k) => fresh.get(k));
      return 7;
    });
    expect(out).toBe(7);
    expect(posted).toEqual([
      { phase: 'compiling', done: 1, total: 2 },
      { phase: 'compiling', done: 2, total: 2 },
    ]);
    // Everything cached: nothing to post.
    posted.length = 0;
    r.build(fresh, 'S', () => ['a', 'b', 'c'].forEach((k) => fresh.get(k)));
    expect(posted).toEqual([]);
  });

  it('a build that fails learns nothing and leaves the cache unobserved', () => {
    const { r, posted } = reporter();
    const cache = new FakeCache();
    expect(() =>
      r.build(cache, 'S', () => {
        cache.get('a');
        throw new Error('out of memory');
      }),
    ).toThrow('out of memory');
    expect(cache.onGet).toBeNull();
    // The next build of S still has no total.
    posted.length = 0;
    const next = new FakeCache();
    r.build(next, 'S', () => next.get('a'));
    expect(posted).toEqual([{ phase: 'compiling', done: 1, total: 0 }]);
  });
});
