/**
 * The playground's checkpoint: the trainer's state file (src/train/checkpoint-file.ts) with the
 * run's description (RunMeta) in its metadata under "run", so a reload can rebuild the run.
 */
import type { AdapterConfig } from '../method/adapter';
import type { WeightPrecision } from '../model/tensor-plan';
import { decodeTrainerState, encodeTrainerState } from '../train/checkpoint-file';
import type { MethodKey } from '../train/comparison';
import type { RoutingSetSelection } from '../train/routing-set';
import type { TrainerCheckpoint, TrainSettings } from '../train/trainer';
import type { BackboneRef } from './protocol';
import { errorMessage } from '../util/errors';

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
  /** The routing set's record indices (src/train/routing-set.ts); absent without a router (unless the run scores held-out examples) and in checkpoints of older versions. */
  routingSet?: RoutingSetSelection;
  /** The compared method the run is (src/train/comparison.ts), for a run of the method comparison. */
  method?: MethodKey;
  /** Steps between held-out scores (the probe and the routing set's task examples); absent: none. */
  evalEvery?: number;
  /** How the backbone's matrices were stored (absent in checkpoints of older versions: f32); a resumed run keeps it. */
  weights?: WeightPrecision;
  savedAt: number;
}

export interface DecodedCheckpoint {
  meta: RunMeta;
  trainer: TrainerCheckpoint;
}

export function encodeCheckpoint(meta: RunMeta, cp: TrainerCheckpoint): Uint8Array<ArrayBuffer> {
  return encodeTrainerState(cp, { run: JSON.stringify(meta) });
}

export function decodeCheckpoint(bytes: Uint8Array): DecodedCheckpoint {
  const { trainer, metadata } = decodeTrainerState(bytes, 'checkpoint');
  let meta: RunMeta;
  try {
    meta = JSON.parse(metadata.run ?? '') as RunMeta;
  } catch (e) {
    throw new Error(`checkpoint: metadata is not valid JSON (${errorMessage(e)})`, { cause: e });
  }
  return { meta, trainer };
}
