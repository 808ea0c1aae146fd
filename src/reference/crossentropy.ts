/**
 * CPU reference (float64) for shaders/crossentropy.wgsl: PyTorch's
 * F.cross_entropy(logits [M, V], labels [M], ignore_index = -100, reduction = 'mean').
 *
 * A row counts when its label lies in 0..V-1. A label of -100 is ignored; any other out-of-range
 * label is also treated as ignored (the GPU must not read out of bounds) and counted in `invalid`
 * so the caller can report it. PyTorch would raise an error for those instead.
 */

export const IGNORE_INDEX = -100;

export interface CrossEntropyResult {
  /** Mean of rowLoss over counted rows; 0 when no row counts (PyTorch gives NaN there). */
  loss: number;
  /** Number of counted rows. */
  count: number;
  /** Rows whose label is neither -100 nor in 0..V-1. */
  invalid: number;
  /** [M] log-sum-exp of each row (saved for the backward). */
  lse: Float64Array;
  /** [M] lse - logits[label], 0 for rows that do not count. */
  rowLoss: Float64Array;
}

function isCounted(label: number, V: number): boolean {
  return Number.isInteger(label) && label >= 0 && label < V;
}

export function crossEntropyForward(logits: ArrayLike<number>, labels: ArrayLike<number>, M: number, V: number): CrossEntropyResult {
  const lse = new Float64Array(M);
  const rowLoss = new Float64Array(M);
  let sum = 0;
  let count = 0;
  let invalid = 0;
  for (let m = 0; m < M; m++) {
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, logits[m * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[m * V + v] - mx);
    lse[m] = mx + Math.log(s);
    const label = labels[m];
    if (isCounted(label, V)) {
      rowLoss[m] = lse[m] - logits[m * V + label];
      sum += rowLoss[m];
      count++;
    } else if (label !== IGNORE_INDEX) {
      invalid++;
    }
  }
  return { loss: count > 0 ? sum / count : 0, count, invalid, lse, rowLoss };
}

/**
 * Gradient of gradScale · loss with respect to the logits (gradScale is the upstream gradient of the
 * scalar loss): dlogits[m, v] = gradScale · (softmax(logits[m])[v] - [v == label]) / count for
 * counted rows, 0 elsewhere. An activation gradient: the GPU kernel overwrites dlogits.
 */
export function crossEntropyBackward(
  gradScale: number,
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  lse: ArrayLike<number>,
  count: number,
  M: number,
  V: number,
): Float64Array {
  const d = new Float64Array(M * V);
  if (count === 0) return d;
  const k = gradScale / count;
  for (let m = 0; m < M; m++) {
    const label = labels[m];
    if (!isCounted(label, V)) continue;
    for (let v = 0; v < V; v++) {
      d[m * V + v] = k * (Math.exp(logits[m * V + v] - lse[m]) - (v === label ? 1 : 0));
    }
  }
  return d;
}
