/**
 * `experiment --study DIR` and `--jobs N`: a study kept in a folder so that an interrupted command
 * resumes where it stopped (StudyStore, see demo/experiment.ts), and several runner processes
 * sharing one study, each training its own shard of the runs.
 *
 * Why processes: on a software adapter a single runner keeps about one and a half of two cores busy
 * (the step's readbacks and the JavaScript between submissions leave the compute threads idle), and
 * two processes fill the gaps (docs/demo.md, "Where a study's time goes").
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StudyStore } from '../demo/experiment';
import { writeAtomic } from './files';

/** A study kept as files in `dir` (made on first use). */
export async function directoryStudy(dir: string): Promise<StudyStore> {
  await mkdir(dir, { recursive: true });
  return {
    where: dir,
    async read(name) {
      try {
        return new Uint8Array(await readFile(join(dir, name)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
    write: (name, bytes) => writeAtomic(join(dir, name), bytes),
    remove: (name) => rm(join(dir, name), { force: true }),
  };
}

/** `--shard I/N`: this process trains the runs whose place modulo N is I. */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) throw new Error(`--shard must be I/N with 0 <= I < N (for example 0/2), got "${text}"`);
  return { index, count };
}

/** The runner's entry script, for starting more runner processes. */
const RUNNER_BIN = resolve(dirname(fileURLToPath(import.meta.url)), 'bin.ts');
const VITE_NODE = resolve(dirname(fileURLToPath(import.meta.url)), '../../node_modules/.bin/vite-node');

/**
 * Runs `experiment` with `args` as `jobs` processes at once, process I with `--shard I/jobs`, and
 * waits for all. Their log lines are passed on prefixed with the shard. A process that fails fails
 * the whole (after the others end: their finished runs stay in the study for the next start).
 */
export async function runShards(args: readonly string[], jobs: number, log: (line: string) => void): Promise<void> {
  const results = await Promise.all(
    Array.from({ length: jobs }, (_, i) => new Promise<{ code: number | null; tail: string[] }>((done, fail) => {
      const child = spawn(VITE_NODE, [RUNNER_BIN, 'experiment', ...args, '--shard', `${i}/${jobs}`], { stdio: ['ignore', 'ignore', 'pipe'] });
      const tail: string[] = [];
      let partial = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          log(`[${i}/${jobs}] ${line}`);
          tail.push(line);
          if (tail.length > 5) tail.shift();
        }
      });
      child.on('error', fail);
      child.on('close', (code) => done({ code, tail }));
    })),
  );
  const failed = results.map((r, i) => ({ ...r, i })).filter((r) => r.code !== 0);
  if (failed.length > 0) {
    throw new Error(failed.map((f) => `shard ${f.i}/${jobs} exited with ${f.code}: ${f.tail.join(' | ')}`).join('\n'));
  }
}
