import { vi } from 'vitest';

/** Runs `fn` with console.log collected (returned, one string) and console.error silenced: the runner's output in a test. */
export async function captureLog(fn: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.map(String).join(' ')));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    await fn();
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
  return lines.join('\n');
}
