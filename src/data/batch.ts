/**
 * Batches of B samples padded on the right to T tokens. Causal-LM targets are shifted here, once:
 * the row for position t predicts token t+1, so the model's loss reads targets[b*T + t] directly.
 *
 *   ids     [B*T] u32   token ids, padding = padId
 *   targets [B*T] i32   next token where it is a target token, else -100 (prompt, padding, last)
 *   valid   [B*T] u32   1 for real tokens (prompt and target), 0 for padding (excluded from LBC's Q)
 *   types   [B]         data-type index of each sample (-1 for an all-padding filler row)
 */
import type { EncodedSample } from './template';

const IGNORE_INDEX = -100;

export interface Batch {
  B: number;
  T: number;
  ids: Uint32Array;
  targets: Int32Array;
  valid: Uint32Array;
  types: Int32Array;
  /** Target tokens counted in the loss. */
  targetCount: number;
  /** Real (non-padding) tokens. */
  tokenCount: number;
}

export function makeBatch(samples: readonly EncodedSample[], B: number, T: number, padId: number, typeIndex: (type: string) => number): Batch {
  if (samples.length > B) throw new Error(`batch of ${B} rows cannot hold ${samples.length} samples`);
  const ids = new Uint32Array(B * T).fill(padId);
  const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
  const valid = new Uint32Array(B * T);
  const types = new Int32Array(B).fill(-1);
  let targetCount = 0;
  let tokenCount = 0;
  samples.forEach((s, b) => {
    if (s.ids.length > T) throw new Error(`sample ${b} has ${s.ids.length} tokens, the batch holds ${T}; truncate when encoding`);
    types[b] = typeIndex(s.type);
    for (let t = 0; t < s.ids.length; t++) {
      ids[b * T + t] = s.ids[t];
      valid[b * T + t] = 1;
      tokenCount++;
      // Position t predicts token t+1 when t+1 belongs to the target.
      if (t + 1 < s.ids.length && t + 1 >= s.promptLength) {
        targets[b * T + t] = s.ids[t + 1];
        targetCount++;
      }
    }
  });
  return { B, T, ids, targets, valid, types, targetCount, tokenCount };
}
