/**
 * Adapter files in and out of the engine worker: the trained adapter (or, after full fine-tuning,
 * the whole model) as the zip Download gives, the training data and settings as a zip for the
 * official LoRAMoE trainer, and an adapter the user picked, loaded onto the GPU in place of the
 * current one.
 */
import { zipSync } from 'fflate';
import { entriesFromZip, BlobSource, isZip, normalizeEntries } from '../io/browser-files';
import { writeSafetensors } from '../io/safetensors';
import { adapterFiles, loadAdapter } from '../loramoe/files';
import { hasAdapter } from '../method/adapter';
import { adapterTypeNames } from '../method/data-types';
import { expectedTensorNames } from '../model/config';
import { officialRunZip } from '../train/official-export';
import { adapterSpecOf, runAdapterConfig, type RunSettings, trainSettingsOf } from '../train/run-settings';
import { displayGroups } from '../run/groups';
import { backboneName, type FileEntry } from './protocol';
import type { WorkerState } from './state';

/** Adapter zips carry this date on every entry, so the same weights always give the same bytes. */
const ZIP_DATE = new Date(2000, 0, 1);

/** Posts the model's adapter zip to the page (Download). */
export async function exportAdapter(s: WorkerState): Promise<void> {
  const { name, bytes } = await adapterZip(s);
  const buf = bytes.buffer;
  s.post({ type: 'adapterZip', name, bytes: buf }, [buf]);
}

/** The model's adapter (or, after full fine-tuning, the whole model) as the zip Download gives. */
export async function adapterZip(s: WorkerState): Promise<{ name: string; bytes: Uint8Array<ArrayBuffer> }> {
  const b = s.requireBackbone();
  const cfg = s.model.adapter.cfg;
  if (!cfg || s.model.adapter.origin === 'none' || !s.model.weights) throw new Error('there is no adapter yet: train or import one');
  const zipped = await s.serial(async () => {
    const w = s.model.weights!;
    const files: Record<string, Uint8Array> = {};
    if (hasAdapter(cfg)) {
      for (const [name, bytes] of adapterFiles(cfg, b.config, await w.readAdapter(), backboneName(s.ref!), s.model.adapter.typeNames)) files[name] = bytes;
    } else {
      // Full fine-tuning: the whole model in the backbone's layout, with its configuration files.
      const host = await w.readBackbone();
      const shapes = new Map(expectedTensorNames(b.config).map((t) => [t.name, t.shape]));
      files['model.safetensors'] = writeSafetensors([...host].map(([name, data]) => ({ name, dtype: 'F32' as const, shape: shapes.get(name)!, data })), { format: 'pt' });
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
        const raw = s.rawFiles.get(f);
        if (raw) files[f] = raw;
      }
    }
    return zipSync(files, { level: 6, mtime: ZIP_DATE });
  });
  const step = s.run?.trainer.stepsDone;
  const name = `${cfg.mode === 'full' ? 'full-finetune' : cfg.mode === 'lora' ? 'lora-adapter' : 'loramoe-adapter'}${step ? `-step${step}` : ''}.zip`;
  return { name, bytes: zipped as Uint8Array<ArrayBuffer> };
}

/** The training data and these settings as a zip for the official LoRAMoE trainer (src/train/official-export.ts). */
export async function exportOfficial(s: WorkerState, spec: RunSettings): Promise<void> {
  const data = s.datasets.get('train');
  if (!data) throw new Error('load a training dataset first: the hand-off carries the data');
  const names = data.info.typeNames;
  const cfg = runAdapterConfig(adapterSpecOf(spec), spec.groups, names);
  const base = s.ref ? backboneName(s.ref) : '';
  const zipped = officialRunZip(data.records, names, cfg, trainSettingsOf(spec), base);
  const buf = zipped.buffer as ArrayBuffer;
  s.post({ type: 'adapterZip', name: 'loramoe-official-run.zip', bytes: buf }, [buf]);
}

/** A number as the adapter's note says it: at most 4 decimals, no trailing zeros. */
const fmt = (x: number): string => String(Math.round(x * 1e4) / 1e4);

/** Loads an adapter from picked files or a zip onto the GPU, in place of the current adapter (and run). */
export async function importAdapter(s: WorkerState, name: string, files: FileEntry[]): Promise<void> {
  if (s.isTraining() || s.run?.status === 'paused') throw new Error('stop the training run before importing an adapter');
  const b = s.requireBackbone();
  const entries = isZip(files) ? entriesFromZip(new Uint8Array(await files[0].file.arrayBuffer()), files[0].path) : normalizeEntries(files);
  const loaded = await loadAdapter(new BlobSource(name, entries), b.config);
  // By the adapter's own names (or the official task types), never by the current dataset's order.
  const typeNames = adapterTypeNames(loaded.dataTypes, loaded.cfg.groups.length) ?? [];
  await s.serial(async () => {
    s.dropRun();
    s.model.rebuildWeights(loaded.cfg, loaded.set);
    s.model.imported = { cfg: loaded.cfg, set: loaded.set };
    const rs = loaded.peft.rsLora;
    const note = rs
      ? `PEFT's lora_alpha ${rs.loraAlpha} with use_rslora at rank ${rs.rank} scales the update by lora_alpha / √r = ${fmt(rs.loraAlpha / Math.sqrt(rs.rank))}; held here as alpha ${fmt(rs.alpha)}, the same scale as alpha / r.`
      : undefined;
    s.model.adapter = {
      origin: 'imported',
      cfg: loaded.cfg,
      label: name + (loaded.baseModel ? ` (trained on ${loaded.baseModel})` : ''),
      typeNames,
      groups: displayGroups(loaded.cfg, typeNames),
      baseModel: loaded.baseModel,
      ...(note ? { note } : {}),
    };
  });
  s.postStatus();
  s.postAdapter();
}
