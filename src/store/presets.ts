/**
 * Presets: named run descriptions shipped in `public/presets/` (train/run-description.ts is the
 * format; `index.json` lists them in the order the picker shows, the default first). Written only
 * by `loadPresets` and `applyPreset` below.
 *
 * Applying a preset sets every training setting it holds (the URL follows, so the link reproduces
 * the run) and loads the backbone and data it names when others are loaded; what it does not hold
 * (checkpoint interval, routing window, weights precision, chat settings) stays as the user set it.
 */
import { create } from 'zustand';
import { parseRunDescription, type RunDescription } from '../train/run-description';
import { chooseSource, loadDemoBackbone } from './backbone-actions';
import { loadDemoData } from './data-actions';
import { useDatasetStore } from './dataset';
import { useModelStore } from './model';
import { setSettings } from './settings';
import type { Settings } from './settings-table';
import { errorText } from './worker-link';

/** The demo training file's name as the data panel shows it once loaded (data-actions.ts loadDemoData). */
const DEMO_TRAIN_NAME = 'demo-train.jsonl';

export interface PresetsState {
  presets: RunDescription[];
  /** Why the presets could not be read (a missing or damaged file, named). */
  error: string | null;
}

export const usePresetsStore = create<PresetsState>(() => ({ presets: [], error: null }));

async function fetchText(path: string): Promise<string> {
  const res = await fetch(new URL(path, document.baseURI));
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.text();
}

/** Reads presets/index.json and every preset it lists; a file that fails is named and the rest are kept. */
export async function loadPresets(): Promise<void> {
  try {
    const index: unknown = JSON.parse(await fetchText('presets/index.json'));
    if (!Array.isArray(index) || !index.every((n) => typeof n === 'string')) throw new Error('presets/index.json: expected a list of preset names');
    const presets: RunDescription[] = [];
    const problems: string[] = [];
    for (const name of index as string[]) {
      const path = `presets/${name}.json`;
      try {
        const d = parseRunDescription(await fetchText(path), path);
        if (d.name !== name) throw new Error(`${path}: its name is "${d.name}", the index lists it as "${name}"`);
        presets.push(d);
      } catch (e) {
        problems.push(errorText(e));
      }
    }
    usePresetsStore.setState({ presets, error: problems.length > 0 ? problems.join('; ') : null });
  } catch (e) {
    usePresetsStore.setState({ error: errorText(e) });
  }
}

/** Sets the form to the preset's training settings and loads its backbone and data where others are loaded. */
export async function applyPreset(d: RunDescription): Promise<void> {
  setSettings({ ...d.settings, targets: [...d.settings.targets] });
  const model = useModelStore.getState();
  if (d.backbone === 'demo' && !(model.info?.ref.kind === 'demo' && model.status === 'ready')) {
    chooseSource('demo');
    await loadDemoBackbone();
  }
  if (d.data === 'demo' && useDatasetStore.getState().train?.name !== DEMO_TRAIN_NAME) await loadDemoData();
}

/** The preset whose every training setting equals the form's (null: the settings are the user's own). */
export function matchingPreset(presets: readonly RunDescription[], values: Settings): RunDescription | null {
  return presets.find((d) => Object.entries(d.settings).every(([k, v]) => JSON.stringify(values[k as keyof Settings]) === JSON.stringify(v))) ?? null;
}
