/**
 * One owner per run, with three tabs: each tab is its own instance of the ownership module over one
 * stand-in for the browser's Web Locks (exclusive locks, ifAvailable, a queue of waiting requests,
 * every lock of a tab released when the tab goes). A run one tab holds cannot be claimed by another,
 * which sees it as held elsewhere; when the owner goes, exactly one waiting tab is granted it; a
 * clean release passes it from waiter to waiter, each giving it back, and no tab sees it held after.
 */
import { describe, expect, it, vi } from 'vitest';

type Grant = { name: string; client: string; settle: () => void };

/** The browser's lock table, shared by the tabs. */
class LockTable {
  held = new Map<string, Grant>();
  waiting: { name: string; client: string; start: () => void }[] = [];

  manager(client: string): LockManager {
    const request = (name: string, options: LockOptions | LockGrantedCallback<unknown>, cb?: LockGrantedCallback<unknown>): Promise<unknown> => {
      const opts = typeof options === 'function' ? {} : options;
      const callback = (typeof options === 'function' ? options : cb)!;
      return new Promise((resolve, reject) => {
        const start = () => {
          let settle = () => undefined as void;
          const released = new Promise<void>((r) => (settle = r));
          this.held.set(name, { name, client, settle });
          Promise.resolve(callback({ name, mode: 'exclusive' } as Lock))
            .then(resolve, reject)
            .finally(() => settle());
          void released.then(() => this.free(name, client));
        };
        if (!this.held.has(name)) setTimeout(start, 0);
        else if (opts.ifAvailable) setTimeout(() => Promise.resolve(callback(null)).then(resolve, reject), 0);
        else this.waiting.push({ name, client, start });
      });
    };
    return {
      request,
      query: () => Promise.resolve({ held: [...this.held.values()].map((g) => ({ name: g.name, mode: 'exclusive' as const, clientId: g.client })), pending: [] }),
    } as unknown as LockManager;
  }

  free(name: string, client: string): void {
    if (this.held.get(name)?.client !== client) return;
    this.held.delete(name);
    const next = this.waiting.findIndex((w) => w.name === name);
    if (next >= 0) setTimeout(this.waiting.splice(next, 1)[0].start, 0);
  }

  /** A tab goes: its locks are released and its waiting requests dropped. */
  close(client: string): void {
    this.waiting = this.waiting.filter((w) => w.client !== client);
    for (const g of [...this.held.values()]) if (g.client === client) this.free(g.name, client);
  }
}

async function openTab(table: LockTable, client: string) {
  vi.resetModules();
  const locks = await import('../io/run-locks');
  locks.setLockManager(table.manager(client));
  return import('./run-ownership');
}

/** A tab per client on one lock table, opened in the order given. */
async function openTabs(table: LockTable, ...clients: string[]) {
  const tabs = [];
  for (const client of clients) tabs.push(await openTab(table, client));
  return tabs;
}

/** Lets the stand-in's queued grants run (they are scheduled with setTimeout 0). */
const settle = () => new Promise((r) => setTimeout(r, 10));

describe('one owner per run', () => {
  it('a held run is read-only elsewhere; when its tab goes exactly one waiting tab gets it', async () => {
    const table = new LockTable();
    const [a, b, c] = await openTabs(table, 'A', 'B', 'C');
    expect(await a.claimRun('r1')).toBe(true);
    expect(await b.claimRun('r1')).toBe(false);
    expect(b.heldElsewhere('r1')).toBe(true);
    expect(a.heldElsewhere('r1')).toBe(false);

    const took: string[] = [];
    b.awaitRun('r1', () => Promise.resolve(took.push('B') > 0));
    c.awaitRun('r1', () => Promise.resolve(took.push('C') > 0));
    await settle();
    expect(took).toEqual([]);
    table.close('A');
    await vi.waitFor(() => expect(took).toHaveLength(1));
    await settle();
    // One tab took it over and keeps it; the other still waits.
    expect(took).toHaveLength(1);
    const [owner, other] = took[0] === 'B' ? [b, c] : [c, b];
    expect(owner.ownsRun('r1')).toBe(true);
    expect(other.ownsRun('r1')).toBe(false);
    expect(await other.refreshHeld()).toEqual(new Set(['r1']));
  });

  it('a clean release passes the lock through the waiting tabs, each giving it back, and leaves the run free', async () => {
    const table = new LockTable();
    const [a, b, c] = await openTabs(table, 'A', 'B', 'C');
    expect(await a.claimRun('r2')).toBe(true);
    const asked: string[] = [];
    b.awaitRun('r2', () => Promise.resolve(asked.push('B') < 0));
    c.awaitRun('r2', () => Promise.resolve(asked.push('C') < 0));
    await a.releaseRun('r2');
    await vi.waitFor(() => expect(asked.sort()).toEqual(['B', 'C']));
    await settle();
    for (const t of [a, b, c]) {
      expect(t.ownsRun('r2')).toBe(false);
      expect(await t.refreshHeld()).toEqual(new Set());
    }
    // Free again: any tab may take it.
    expect(await c.claimRun('r2')).toBe(true);
  });
});
