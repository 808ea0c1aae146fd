/** Small slices of the shipped demo data, for tests that run the experiment on the demo backbone. */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The first `n` records of each data type of a shipped JSON Lines file (public/data/FILE). */
export async function demoSlice(file: string, n: number): Promise<string> {
  const lines = (await readFile(join('public/data', file), 'utf8')).trim().split('\n');
  const taken = new Map<string, number>();
  const kept = lines.filter((l) => {
    const type = String((JSON.parse(l) as { type: unknown }).type);
    const k = taken.get(type) ?? 0;
    taken.set(type, k + 1);
    return k < n;
  });
  return kept.join('\n') + '\n';
}

/** Writes the experiment's three files into `dir`: `train` training and `probe` probe records per type, `tasks` task examples per task. */
export async function writeDemoSlice(dir: string, train: number, probe: number, tasks: number): Promise<void> {
  await writeFile(join(dir, 'demo-train.jsonl'), await demoSlice('demo-train.jsonl', train));
  await writeFile(join(dir, 'demo-probe.jsonl'), await demoSlice('demo-probe.jsonl', probe));
  await writeFile(join(dir, 'demo-task-eval.jsonl'), await demoSlice('demo-task-eval.jsonl', tasks));
}
