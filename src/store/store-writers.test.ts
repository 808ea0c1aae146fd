/**
 * One writer per store, kept so: every zustand store in src/ names its one writer in its doc comment
 * ("Written only by ./x.ts"), and no other source file changes it. A write is a call of the store's
 * `setState`; a store made with setters inside it (`create((set) => ...)`) or a `setState` reached
 * under another name would hide its writers from this scan, so both are refused too. Tests are
 * exempt: they set the stores up.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** Source text without its comments (a comment may name a write without making one). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|\s)\/\/.*$/gm, '$1');
}

const lineOf = (text: string, index: number): number => text.slice(0, index).split('\n').length;

/**
 * What breaks the one-writer rule in `files` (path from the repository root → text; test files
 * already left out), one sentence each with its file and line.
 */
function storeWriteProblems(files: ReadonlyMap<string, string>): string[] {
  const problems: string[] = [];
  /** Each store: the file that makes it, and the writer its doc comment names. */
  const stores = new Map<string, { file: string; writer: string | null }>();
  for (const [file, text] of files) {
    for (const m of text.matchAll(/(?:\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*)?export const (use\w+Store) = create\b/g)) {
      const line = lineOf(text, m.index + m[0].indexOf('export const'));
      const named = m[1]?.match(/Written only by \.\/([\w.-]+\.tsx?)/);
      const writer = named ? posix.join(posix.dirname(file), named[1]) : null;
      if (!named) problems.push(`${file}:${line}: ${m[2]} has no doc comment naming its writer ("Written only by ./module.ts")`);
      else if (!files.has(writer!)) problems.push(`${file}:${line}: ${m[2]}'s doc comment names ${writer}, which is not a source file`);
      stores.set(m[2], { file, writer });
    }
    const body = code(text);
    for (const m of body.matchAll(/\bcreate\s*(?:<[^>]*>)?\s*\(\s*(?:\(\s*\w|\w+\s*=>)/g)) {
      problems.push(`${file}:${lineOf(body, m.index)}: a store made with setters inside it (create((set) => ...)); make it with create(() => ...) and write it from one module`);
    }
  }
  for (const [file, text] of files) {
    const body = code(text);
    for (const m of body.matchAll(/(?:\b(use\w+Store)\s*\.\s*)?\bsetState\b/g)) {
      const at = `${file}:${lineOf(body, m.index)}`;
      const store = m[1] ? stores.get(m[1]) : undefined;
      if (!store) problems.push(`${at}: setState of ${m[1] ?? 'something other than a store by its name'}: a store is written as useXStore.setState, in its one writer`);
      else if (store.writer !== null && store.writer !== file) problems.push(`${at}: writes ${m[1]}, whose one writer is ${store.writer}${store.writer === store.file ? '' : ` (the store is made in ${store.file})`}`);
    }
  }
  return problems;
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name) ? [p] : [];
  });
}

describe('one writer per store', () => {
  it('holds in src: every store names its writer, and only that module writes it', () => {
    const files = new Map(sourceFiles(join(ROOT, 'src')).map((p) => [relative(ROOT, p).split('\\').join('/'), readFileSync(p, 'utf8')]));
    const stores = [...files.values()].flatMap((t) => [...t.matchAll(/export const (use\w+Store) = create\b/g)].map((m) => m[1]));
    // The scan sees the page's stores (a broken pattern would find none and pass).
    expect(stores).toEqual(expect.arrayContaining(['useRunStore', 'useSettingsStore', 'useGpuStore', 'useLibraryStore']));
    expect(storeWriteProblems(files)).toEqual([]);
  });

  const store = (writer: string) => `import { create } from 'zustand';\n/** The run. Written only by ${writer}. */\nexport const useRunStore = create<S>(() => ({ n: 0 }));\n`;

  it('refuses a second module writing a store, naming the file, the line and the one writer', () => {
    const files = new Map([
      ['src/store/run.ts', store('./run-actions.ts')],
      ['src/store/run-actions.ts', "import { useRunStore } from './run';\nexport const go = () => useRunStore.setState({ n: 1 });\n"],
      ['src/ui/Panel.tsx', "import { useRunStore } from '../store/run';\n// useRunStore.setState in a comment is no write\nconst x = 1;\nexport const f = () => useRunStore.setState({ n: x });\n"],
    ]);
    expect(storeWriteProblems(files)).toEqual(['src/ui/Panel.tsx:4: writes useRunStore, whose one writer is src/store/run-actions.ts (the store is made in src/store/run.ts)']);
  });

  it('refuses a store that names no writer or a missing one, setters inside a store, and setState under another name', () => {
    const files = new Map([
      ['src/store/run.ts', store('./gone.ts')],
      ['src/store/view.ts', "import { create } from 'zustand';\nexport const useViewStore = create<V>((set) => ({ v: 0, bump: () => set({ v: 1 }) }));\n"],
      ['src/store/alias.ts', "import { useRunStore as runs } from './run';\nexport const go = () => runs.setState({ n: 2 });\n"],
    ]);
    expect(storeWriteProblems(files)).toEqual([
      "src/store/run.ts:3: useRunStore's doc comment names src/store/gone.ts, which is not a source file",
      'src/store/view.ts:2: useViewStore has no doc comment naming its writer ("Written only by ./module.ts")',
      'src/store/view.ts:2: a store made with setters inside it (create((set) => ...)); make it with create(() => ...) and write it from one module',
      'src/store/alias.ts:2: setState of something other than a store by its name: a store is written as useXStore.setState, in its one writer',
    ]);
  });
});
