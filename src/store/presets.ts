/**
 * Presets on the page (train/presets.ts: the shipped run descriptions). Applying one sets every
 * training setting it holds (the URL follows, so the link reproduces the run) and loads the
 * backbone and data it names where others are loaded; what it does not hold (checkpoint interval,
 * routing window, weights precision, chat settings) stays as the user set it.
 */
import type { RunDescription } from '../train/run-description';
import { chooseSource, loadDemoBackbone } from './backbone-actions';
import { DEMO_TRAIN_NAME, loadDemoData } from './data-actions';
import { useDatasetStore } from './dataset';
import { useModelStore } from './model';
import { setSettings } from './settings';
import type { Settings } from './settings-table';

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
