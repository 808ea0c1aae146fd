/**
 * A trainer's state as one safetensors file (one ArrayBuffer for IndexedDB, one file for the
 * runner):
 *
 *   param:{name}  the trainable tensor (an adapter's router, A, B; or a backbone weight in full mode)
 *   m:{name}      AdamW's first moment
 *   v:{name}      AdamW's second moment
 *   __metadata__  {"format": CHECKPOINT_FORMAT, "trainer": JSON of the step count, the sampler
 *                 state, the dropout RNG state and the tensor names, plus the caller's own keys
 *                 (the playground's run description, the runner's)}
 *
 * Everything is float32 (moments and parameters round-trip exactly), so a run continued from it
 * takes the same steps as one never stopped.
 */
import { getTensorF32, parseSafetensors, writeSafetensors, type TensorToWrite } from '../io/safetensors';
import type { SamplerState, TrainerCheckpoint } from './trainer';
import { parseJson } from '../util/errors';

export const CHECKPOINT_FORMAT = 'loramoe-playground-checkpoint-v1';

const RESERVED = ['format', 'trainer'];

export function encodeTrainerState(cp: TrainerCheckpoint, metadata: Record<string, string>): Uint8Array<ArrayBuffer> {
  for (const k of RESERVED) if (k in metadata) throw new Error(`checkpoint: metadata key "${k}" is reserved`);
  const tensors: TensorToWrite[] = [];
  for (const t of cp.tensors) {
    tensors.push({ name: `param:${t.name}`, dtype: 'F32', shape: t.shape, data: t.param });
    tensors.push({ name: `m:${t.name}`, dtype: 'F32', shape: t.shape, data: t.m });
    tensors.push({ name: `v:${t.name}`, dtype: 'F32', shape: t.shape, data: t.v });
  }
  const trainer = { stepsDone: cp.stepsDone, sampler: cp.sampler, dropoutRng: cp.dropoutRng, names: cp.tensors.map((t) => t.name) };
  return writeSafetensors(tensors, { ...metadata, format: CHECKPOINT_FORMAT, trainer: JSON.stringify(trainer) }, 'checkpoint');
}

export function decodeTrainerState(bytes: Uint8Array, fileName = 'checkpoint'): { trainer: TrainerCheckpoint; metadata: Record<string, string> } {
  const file = parseSafetensors(bytes, fileName);
  const md = file.metadata ?? {};
  if (md.format !== CHECKPOINT_FORMAT) throw new Error(`${fileName}: format "${md.format ?? '(none)'}" is not ${CHECKPOINT_FORMAT}`);
  const trainer = parseJson(md.trainer ?? '', (m) => `${fileName}: metadata is not valid JSON (${m})`) as { stepsDone: number; sampler: SamplerState; dropoutRng: number; names: string[] };
  if (!Array.isArray(trainer.names)) throw new Error(`${fileName}: metadata lists no tensors`);
  const tensors = trainer.names.map((name) => {
    const info = file.tensors.get(`param:${name}`);
    if (!info || !file.tensors.has(`m:${name}`) || !file.tensors.has(`v:${name}`)) throw new Error(`${fileName}: tensor ${name} or its moments are missing`);
    return {
      name,
      shape: [...info.shape],
      param: getTensorF32(file, bytes, `param:${name}`),
      m: getTensorF32(file, bytes, `m:${name}`),
      v: getTensorF32(file, bytes, `v:${name}`),
    };
  });
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(md)) if (!RESERVED.includes(k)) metadata[k] = v;
  return { trainer: { stepsDone: trainer.stepsDone, sampler: trainer.sampler, dropoutRng: trainer.dropoutRng, tensors }, metadata };
}
