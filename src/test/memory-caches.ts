/** Cache Storage in memory (the parts the Hub clients use), for tests in Node. */
export class MemoryCaches {
  readonly caches = new Map<string, Map<string, Response>>();
  async open(name: string) {
    let m = this.caches.get(name);
    if (!m) this.caches.set(name, (m = new Map()));
    const store = m;
    return {
      async match(url: string | Request) {
        const r = store.get(typeof url === 'string' ? url : url.url);
        return r ? r.clone() : undefined;
      },
      async put(url: string, res: Response) {
        store.set(url, res);
      },
      async keys() {
        return [...store.keys()].map((u) => new Request(u));
      },
      async delete(req: Request) {
        return store.delete(req.url);
      },
    };
  }
}
