/**
 * A training checkpoint as one safetensors file, so it is one ArrayBuffer to store in IndexedDB
 * and to transfer between the worker and the page:
 *
 *   param:{name}  the trainable tensor (an adapter's router, A, B; or a backbone weight in full mode)
 *   m:{name}      AdamW's first moment
 *   v:{name}      AdamW's second moment
 *   __metadata__  {"format": CHECKPOINT_FORMAT, "run": JSON of RunMeta, "trainer": JSON of the step
 *                 count, the sampler state and the dropout RNG state}
 *
 * Everything is float32 (moments and parameters round-trip exactly).
 */
import { getTensorF32, parseSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors';
import type { AdapterConfig } from '../method/adapter';
import type { SamplerState, TrainerCheckpoint, TrainSettings } from '../train/trainer';
import type { BackboneRef } from './protocol';

export const CHECKPOINT_FORMAT = 'loramoe-playground-checkpoint-v1';

/** What a checkpoint was trained on and with: enough to rebuild the run around it. */
export interface RunMeta {
  runId: string;
  backbone: BackboneRef;
  /** Name and byte size of the training dataset (the dataset itself is stored separately). */
  dataset: { name: string; bytes: number; records: number };
  adapter: AdapterConfig;
  /** The settings the Trainer was built with (maxLength already clamped to the padded length). */
  train: TrainSettings;
  typeNames: string[];
  /** Run length the user asked for. */
  totalSteps: number;
  /** Steps between checkpoints and between routing-heatmap updates. */
  checkpointEvery: number;
  routingEvery: number;
  /** Faulty steps in a row before a rollback (absent in checkpoints of older versions: 3). */
  faultLimit?: number;
  savedAt: number;
}

export interface DecodedCheckpoint {
  meta: RunMeta;
  trainer: TrainerCheckpoint;
}

export function encodeCheckpoint(meta: RunMeta, cp: TrainerCheckpoint): Uint8Array<ArrayBuffer> {
  const tensors: TensorToWrite[] = [];
  for (const t of cp.tensors) {
    tensors.push({ name: `param:${t.name}`, dtype: 'F32', shape: t.shape, data: t.param });
    tensors.push({ name: `m:${t.name}`, dtype: 'F32', shape: t.shape, data: t.m });
    tensors.push({ name: `v:${t.name}`, dtype: 'F32', shape: t.shape, data: t.v });
  }
  const trainer = { stepsDone: cp.stepsDone, sampler: cp.sampler, dropoutRng: cp.dropoutRng, names: cp.tensors.map((t) => t.name) };
  return writeSafetensors(tensors, { format: CHECKPOINT_FORMAT, run: JSON.stringify(meta), trainer: JSON.stringify(trainer) }, 'checkpoint');
}

export function decodeCheckpoint(bytes: Uint8Array): DecodedCheckpoint {
  const file = parseSafetensors(bytes, 'checkpoint');
  const md = file.metadata ?? {};
  if (md.format !== CHECKPOINT_FORMAT) throw new Error(`checkpoint: format "${md.format ?? '(none)'}" is not ${CHECKPOINT_FORMAT}`);
  let meta: RunMeta;
  let trainer: { stepsDone: number; sampler: SamplerState; dropoutRng: number; names: string[] };
  try {
    meta = JSON.parse(md.run ?? '') as RunMeta;
    trainer = JSON.parse(md.trainer ?? '') as typeof trainer;
  } catch (e) {
    throw new Error(`checkpoint: metadata is not valid JSON (${e instanceof Error ? e.message : String(e)})`, { cause: e });
  }
  if (!Array.isArray(trainer.names)) throw new Error('checkpoint: metadata lists no tensors');
  const tensors = trainer.names.map((name) => {
    const info = file.tensors.get(`param:${name}`);
    if (!info || !file.tensors.has(`m:${name}`) || !file.tensors.has(`v:${name}`)) throw new Error(`checkpoint: tensor ${name} or its moments are missing`);
    return {
      name,
      shape: [...info.shape],
      param: getTensorF32(file, bytes, `param:${name}`),
      m: getTensorF32(file, bytes, `m:${name}`),
      v: getTensorF32(file, bytes, `v:${name}`),
    };
  });
  return { meta, trainer: { stepsDone: trainer.stepsDone, sampler: trainer.sampler, dropoutRng: trainer.dropoutRng, tensors } };
}
