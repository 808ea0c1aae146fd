/**
 * The floors check: every import in src/, tools/ and e2e/ must run down a floor (or stay in its own
 * folder), no two folders may import each other, directly or round a longer loop, and no two files
 * of src/ may either (type imports count: a circle of files is one module in disguise).
 *
 *   npx vite-node tools/check-layers.ts          (part of `npm test`; exits 1 on a violation)
 *
 * The floors, from the ground up (docs/ARCHITECTURE.md explains each):
 *
 *   ground   util, method, data, io, reference, shaders, presets (JSON)  import each other freely,
 *                                                      as long as no two folders end up in a cycle
 *   engine   the WebGPU runtime and kernels
 *   loramoe  adapter defaults, groups, init, files      (model imports loramoe, never the reverse)
 *   model    the GPU model graph, weights, generation, loading
 *   train    trainer, evaluation, probe, routing statistics
 *   run      the run driver: a run's whole life, headless (the worker and the runner drive it)
 *   beside   worker | cli, demo, tools, test, fuzz     each imports train and below; cli, demo,
 *            tools and the test helpers use one another, never the worker, the stores or the UI
 *   store    zustand stores and the bridge to the engine worker
 *   ui       React components and views
 *   top      src/main.tsx, e2e/
 *
 * Tests (*.test.ts) may import what their own folder may, their own floor, and the test helpers of
 * src/test/ and src/fuzz/. Only relative imports are checked (packages are not floors); a `?raw`/`?url` suffix is
 * dropped. The floor of a file is the first matching entry of FLOOR_OF below.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

interface Floor {
  name: string;
  rank: number;
  /** Folders (repository-relative path prefixes) on this floor. */
  folders: string[];
  /**
   * Whether folders of this floor may import one another. On the ground they may (cycles aside);
   * beside the worker, cli/demo/tools/test may use each other but not the worker, and the worker
   * none of them.
   */
  sideways: 'all' | 'none' | ((from: string, to: string) => boolean);
}

/** Test helpers (and the fuzz tests' generators): any test may import them. */
const TEST_HELPERS = ['src/test', 'src/fuzz'];
const BESIDE = ['src/cli', 'src/demo', 'tools', ...TEST_HELPERS];

const FLOORS: Floor[] = [
  { name: 'ground', rank: 0, folders: ['src/util', 'src/method', 'src/data', 'src/io', 'src/reference', 'shaders', 'public', 'src/presets'], sideways: 'all' },
  { name: 'engine', rank: 1, folders: ['src/engine'], sideways: 'none' },
  { name: 'loramoe', rank: 2, folders: ['src/loramoe'], sideways: 'none' },
  { name: 'model', rank: 3, folders: ['src/model'], sideways: 'none' },
  { name: 'train', rank: 4, folders: ['src/train'], sideways: 'none' },
  { name: 'run', rank: 5, folders: ['src/run'], sideways: 'none' },
  { name: 'beside', rank: 6, folders: ['src/worker', ...BESIDE], sideways: (from, to) => BESIDE.includes(from) && BESIDE.includes(to) },
  { name: 'store', rank: 7, folders: ['src/store'], sideways: 'none' },
  { name: 'ui', rank: 8, folders: ['src/ui'], sideways: 'none' },
  { name: 'top', rank: 9, folders: ['src/main.tsx', 'e2e', 'tools/soak.ts'], sideways: 'all' },
];

/**
 * A file's folder: the longest listed prefix it falls under. A file may be listed on its own:
 * tools/soak.ts drives the engine worker's Session in Node with the page's default settings, as the
 * page does, so this long-running test of the whole stack sits at the top with the e2e tests rather
 * than beside the worker with the other tools.
 */
function folderOf(file: string): string | null {
  let best: string | null = null;
  for (const f of FLOORS) {
    for (const p of f.folders) {
      if ((file === p || file.startsWith(p + '/')) && (best === null || p.length > best.length)) best = p;
    }
  }
  return best;
}

function floorOf(folder: string): Floor {
  const f = FLOORS.find((x) => x.folders.includes(folder));
  if (!f) throw new Error(`no floor for ${folder}`);
  return f;
}

const isTest = (file: string) => /\.(test|spec)\.tsx?$/.test(file);

/** Whether `from` (a file in folder `fromFolder`) may import a file in `to`. */
function allowed(file: string, fromFolder: string, to: string): boolean {
  if (fromFolder === to) return true;
  const a = floorOf(fromFolder);
  const b = floorOf(to);
  if (b.rank < a.rank) return true;
  if (isTest(file) && TEST_HELPERS.includes(to)) return true;
  if (b.rank > a.rank) return false;
  if (a.sideways === 'all') return true;
  if (a.sideways === 'none') return isTest(file);
  return a.sideways(fromFolder, to) || isTest(file);
}

// ---------------------------------------------------------------------------------------------
// Reading imports

export interface ImportSite {
  file: string;
  line: number;
  spec: string;
  /** Repository-relative path of the imported file (no extension resolution needed for floors). */
  target: string;
}

/**
 * Blanks comments and the text of every string that is not an import's specifier (keeping line
 * breaks and quotes), so an import written in a comment or inside a string is not read.
 */
function stripComments(src: string): string {
  return src.replace(
    /\/\*[\s\S]*?\*\/|\/\/[^\n]*|('(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`)/g,
    (m: string, str: string | undefined, offset: number) => {
      if (str === undefined) return m.replace(/[^\n]/g, ' ');
      const specifier = str[0] !== '`' && /(?:\bfrom|\bimport|\bimport\s*\()\s*$/.test(src.slice(Math.max(0, offset - 40), offset));
      return specifier ? m : m[0] + m.slice(1, -1).replace(/[^\n]/g, ' ') + m[m.length - 1];
    },
  );
}

const IMPORT_RE = /(?:^|[;\s}])(?:import|export)\s[^;'"`]*?\sfrom\s*(['"])([^'"]+)\1|(?:^|[;\s])import\s*(['"])([^'"]+)\3|\bimport\s*\(\s*(['"])([^'"]+)\5\s*\)/g;

export function importsOf(file: string, text: string): ImportSite[] {
  const src = stripComments(text);
  const out: ImportSite[] = [];
  for (const m of src.matchAll(IMPORT_RE)) {
    const spec = m[2] ?? m[4] ?? m[6];
    if (!spec.startsWith('.')) continue;
    const line = src.slice(0, m.index + m[0].length).split('\n').length;
    const target = relative(ROOT, normalize(join(ROOT, dirname(file), spec.replace(/\?.*$/, '')))).split('\\').join('/');
    out.push({ file, line, spec, target });
  }
  return out;
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(join(ROOT, dir))) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = dir ? `${dir}/${name}` : name;
    if (statSync(join(ROOT, p)).isDirectory()) walk(p, out);
    else if (/\.(tsx?|mts|mjs|js)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
}

// ---------------------------------------------------------------------------------------------
// The check

export interface Report {
  files: number;
  imports: number;
  upward: { site: ImportSite; why: string }[];
  cycles: { folders: string[]; edges: ImportSite[] }[];
  /** Circles of files in src/ (type imports included): each file and the imports that close it. */
  fileCycles: { files: string[]; edges: ImportSite[] }[];
  unplaced: string[];
}

/** The file an import names, among `known` (the specifier has no extension, or a .js one for a .ts file). */
function resolveFile(target: string, known: ReadonlySet<string>): string | null {
  const bare = target.replace(/\.js$/, '');
  for (const c of [target, `${bare}.ts`, `${bare}.tsx`, `${bare}/index.ts`, `${bare}/index.tsx`]) if (known.has(c)) return c;
  return null;
}

/** Strongly connected groups of two or more nodes, with the edges inside each. */
function circles(edges: Map<string, Map<string, ImportSite[]>>): { nodes: string[]; edges: ImportSite[] }[] {
  const out: { nodes: string[]; edges: ImportSite[] }[] = [];
  for (const scc of stronglyConnected(edges)) {
    if (scc.length < 2) continue;
    const inside = new Set(scc);
    const sites: ImportSite[] = [];
    for (const a of scc) for (const [b, s] of edges.get(a) ?? []) if (inside.has(b)) sites.push(...s);
    out.push({ nodes: scc.sort(), edges: sites });
  }
  return out;
}

function addEdge(edges: Map<string, Map<string, ImportSite[]>>, from: string, to: string, site: ImportSite): void {
  const m = edges.get(from) ?? new Map<string, ImportSite[]>();
  edges.set(from, m);
  const list = m.get(to) ?? [];
  m.set(to, list);
  list.push(site);
}

export function checkLayers(files: readonly string[], read: (file: string) => string): Report {
  const report: Report = { files: files.length, imports: 0, upward: [], cycles: [], fileCycles: [], unplaced: [] };
  const edges = new Map<string, Map<string, ImportSite[]>>();
  const fileEdges = new Map<string, Map<string, ImportSite[]>>();
  const known = new Set(files);
  for (const file of files) {
    const from = folderOf(file);
    if (from === null) {
      report.unplaced.push(file);
      continue;
    }
    for (const site of importsOf(file, read(file))) {
      report.imports++;
      const to = folderOf(site.target);
      if (to === null) {
        report.upward.push({ site, why: `${site.target} is on no floor` });
        continue;
      }
            if (!allowed(file, from, to)) {
        report.upward.push({ site, why: `${from} (${floorOf(from).name}) may not import ${to} (${floorOf(to).name})` });
      }
      // Folder cycles are about the product's dependencies: tests are left out.
      if (from !== to && !isTest(file)) addEdge(edges, from, to, site);
      const target = file.startsWith('src/') ? resolveFile(site.target, known) : null;
      if (target !== null && target.startsWith('src/')) addEdge(fileEdges, file, target, site);
    }
  }
  report.cycles = circles(edges).map((c) => ({ folders: c.nodes, edges: c.edges }));
  report.fileCycles = circles(fileEdges).map((c) => ({ files: c.nodes, edges: c.edges }));
  return report;
}

/** Tarjan's strongly connected components of the folder graph. */
function stronglyConnected(edges: Map<string, Map<string, ImportSite[]>>): string[][] {
  const nodes = new Set<string>();
  for (const [a, m] of edges) {
    nodes.add(a);
    for (const b of m.keys()) nodes.add(b);
  }
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      out.push(comp);
    }
  };
  for (const v of [...nodes].sort()) if (!index.has(v)) visit(v);
  return out;
}

function main(): number {
  const files: string[] = [];
  for (const d of ['src', 'tools', 'e2e']) walk(d, files);
  files.sort();
  const r = checkLayers(files, (f) => readFileSync(join(ROOT, f), 'utf8'));
  for (const f of r.unplaced) console.log(`${f}: on no floor (add its folder to tools/check-layers.ts)`);
  for (const { site, why } of r.upward) console.log(`${site.file}:${site.line}: import '${site.spec}' runs up a floor: ${why}`);
  for (const c of r.cycles) {
    console.log(`folder cycle: ${c.folders.join(' <-> ')}`);
    const byPair = new Map<string, ImportSite[]>();
    for (const s of c.edges) {
      const key = `${folderOf(s.file)} -> ${folderOf(s.target)}`;
      byPair.set(key, [...(byPair.get(key) ?? []), s]);
    }
    for (const [pair, sites] of byPair) {
      const more = sites.length > 3 ? ` and ${sites.length - 3} more` : '';
      console.log(`  ${pair}: ${sites.slice(0, 3).map((s) => `${s.file}:${s.line}`).join(', ')}${more}`);
    }
  }
  for (const c of r.fileCycles) {
    console.log(`file cycle: ${c.files.join(' <-> ')}`);
    for (const s of c.edges) console.log(`  ${s.file}:${s.line}: import '${s.spec}'`);
  }
  console.log(
    `check-layers: ${r.files} files, ${r.imports} relative imports; upward imports: ${r.upward.length}, folder cycles: ${r.cycles.length}, file cycles: ${r.fileCycles.length}, files on no floor: ${r.unplaced.length}`,
  );
  return r.upward.length + r.cycles.length + r.fileCycles.length + r.unplaced.length > 0 ? 1 : 0;
}

// A script (`npx vite-node tools/check-layers.ts`); its test imports checkLayers without running it.
if (!process.env.VITEST) process.exitCode = main();
