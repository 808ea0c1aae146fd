/** Small text formatters for the panels. */
import type { StartupProgress } from '../worker/protocol';

export { formatBytes, formatCount } from '../store/memory';

/** "1 h 02 min", "3 min 05 s", "12 s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString();
}

/** What a run's start is doing, as the run bar says it: "Compiling kernels: 12 of 31". */
export function describeStartup(p: StartupProgress): string {
  const of = (unit: string) => (p.total > 0 ? `: ${p.done.toLocaleString('en-US')} of ${p.total.toLocaleString('en-US')}${unit}` : p.done > 0 ? `: ${p.done.toLocaleString('en-US')} so far` : '');
  switch (p.phase) {
    case 'tokenising':
      return `Tokenising the data${of(' records')}`;
    case 'compiling':
      return `Compiling kernels${of('')}`;
    case 'uploading':
      return 'Uploading the weights to the GPU';
    case 'firstStep':
      return 'Running the first step';
  }
}

/** "1 record", "2 records", "1,234 records" (an irregular plural is given: count(3, 'query', 'queries')). */
export function count(n: number, word: string, plural = `${word}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? word : plural}`;
}
