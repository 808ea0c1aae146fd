/**
 * The shipped presets: run descriptions (./run-description.ts) in `src/presets/`, bundled into the
 * page and read by the runner, in the order `src/presets/index.json` gives (the default first).
 * They live beside the code rather than in `public/` because the form's defaults are the default
 * preset, needed before the first render, and Vite bundles only files outside `public/`.
 */
import indexJson from '../presets/index.json?raw';
import { parseRunDescription, type RunDescription } from './run-description';

const FILES = import.meta.glob<string>('../presets/*.json', { query: '?raw', import: 'default', eager: true });

function load(): RunDescription[] {
  const names = JSON.parse(indexJson) as string[];
  const listed = new Set(names.map((n) => `../presets/${n}.json`));
  for (const path of Object.keys(FILES)) {
    if (!path.endsWith('/index.json') && !listed.has(path)) throw new Error(`src/presets/index.json does not list ${path.slice('../presets/'.length)}`);
  }
  return names.map((name) => {
    const text = FILES[`../presets/${name}.json`];
    if (text === undefined) throw new Error(`src/presets/index.json lists "${name}", but src/presets/${name}.json is missing`);
    const d = parseRunDescription(text, `src/presets/${name}.json`);
    if (d.name !== name) throw new Error(`src/presets/${name}.json: its name is "${d.name}"`);
    return d;
  });
}

export const PRESETS: readonly RunDescription[] = load();

/** The default preset: the form's defaults and the first run a newcomer makes. */
export const DEFAULT_PRESET: RunDescription = PRESETS[0];

export function presetNamed(name: string): RunDescription | undefined {
  return PRESETS.find((p) => p.name === name);
}
