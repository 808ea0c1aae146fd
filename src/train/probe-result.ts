/**
 * A probe's result from its scored questions: overall and per data type (kept apart from the
 * scoring in probe.ts, which runs the model, so the page's views can build one too).
 */

export interface ProbeItem {
  question: string;
  gold: string;
  type: string;
  correct: boolean;
  /** log p(gold answer + end of sequence | question), natural log. */
  logLikelihood: number;
  /** The greedy answer's tokens up to and including the first one that differs from gold. */
  greedyPrefix: string;
}

export interface ProbeResult {
  accuracy: number;
  meanLogLikelihood: number;
  items: ProbeItem[];
  /** Accuracy per data type. */
  byType: Record<string, { n: number; accuracy: number }>;
  /** Experts switched off while scoring (knockout; [] for none; absent in results from before knockout). */
  expertMask?: number[];
}

/** The result of scored questions: accuracy overall and per data type, mean log-likelihood. */
export function probeResultOf(items: ProbeItem[], expertMask: readonly number[] = []): ProbeResult {
  const byType: Record<string, { n: number; accuracy: number }> = {};
  for (const it of items) {
    const e = (byType[it.type] ??= { n: 0, accuracy: 0 });
    e.n++;
    e.accuracy += it.correct ? 1 : 0;
  }
  for (const e of Object.values(byType)) e.accuracy /= e.n;
  return {
    accuracy: items.filter((i) => i.correct).length / items.length,
    meanLogLikelihood: items.reduce((a, i) => a + i.logLikelihood, 0) / items.length,
    items,
    byType,
    expertMask: [...expertMask],
  };
}
