/**
 * A run moves between the page and the terminal and continues bit-identically: a run the engine
 * worker's Session trains (the page's code path, its checkpoints in IndexedDB) is exported as a run
 * folder's zip and `train --resume ZIP` finishes it; a run folder `train` wrote is imported into the
 * library and the Session finishes it. Both give the adapter bytes of a run never moved. A folder
 * whose data is not the data it was trained on is refused, naming the file and both hashes.
 */
import 'fake-indexeddb/auto';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main';
import { saveDataset } from '../io/persist';
import { DirectorySource } from '../io/node-files';
import { loadAdapter } from '../loramoe/files';
import type { AdapterSet } from '../loramoe/init';
import { checkDataHash, exportStoredRun, readRunFolder, storeImportedRun, unzipFolder } from '../run/run-folder';
import { asFileEntries, tinyHfFiles, writeFiles } from '../test/hf-dir';
import { testGpu } from '../test/gpu';
import { tinyRunSettings } from '../test/run-settings';
import { adapterBits, expectSameBits, runnerFlagsOf, twoTypeDataset } from '../test/same-run';
import { runSpecOf } from '../train/run-settings';
import type { RunStatus } from './protocol';
import { Session } from './session';

/** Four steps, checkpoints every two: the run moves at step 2. */
const SETTINGS = tinyRunSettings({ mode: 'loramoe', lbcBeta: 0.5, steps: 4, seed: 21, checkpointEvery: 2, routingEvery: 2, maxLength: 14 });

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function readFolder(dir: string): Promise<Map<string, Uint8Array<ArrayBuffer>>> {
  const out = new Map<string, Uint8Array<ArrayBuffer>>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    out.set(path.slice(dir.length + 1), new Uint8Array(await readFile(path)));
  }
  return out;
}

describe('a run moves between the page and the runner', () => {
  const hf = tinyHfFiles({ seed: 7 });
  const data = new TextEncoder().encode(twoTypeDataset());
  let dir = '';
  let model = '';
  let session: Session;
  /** What the page would know: the run's id and status. */
  const seen = { runId: '', status: 'idle' as RunStatus };
  /** An unmoved run of SETTINGS, trained by the runner: the adapter both moved runs must equal. */
  let unmoved: AdapterSet;

  const whenStatus = async (...want: RunStatus[]) => {
    while (!want.includes(seen.status) && seen.status !== 'error') await new Promise((r) => setTimeout(r, 10));
    expect(seen.status).toBe(want.includes(seen.status) ? seen.status : want[0]);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loramoe-moved-'));
    model = join(dir, 'model');
    await writeFiles(model, hf.files);
    await writeFile(join(dir, 'data.jsonl'), data);
    session = new Session(await testGpu(), (ev) => {
      if (ev.type === 'runStarted') seen.runId = ev.run.runId;
      if (ev.type === 'runStatus') seen.status = ev.status;
      // The page's run pauses once its checkpoint of step 2 is stored, before step 3 begins.
      if (ev.type === 'checkpoint' && ev.step === 2 && seen.status === 'running') session.pause();
    });
    // Named as the runner names a backbone folder (its last part), as the page names a picked one.
    await session.loadBackbone({ kind: 'files', ref: { kind: 'local', name: 'model' }, files: asFileEntries(hf.files) });
    await session.loadDataset('train', 'data.jsonl', data.slice().buffer);
    // The page keeps the training data it loaded in IndexedDB; an export carries it.
    await saveDataset('train', 'data.jsonl', data.slice().buffer);
    await session.setWeightSetting('f32');
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    await main(['train', '--model', model, '--data', join(dir, 'data.jsonl'), '--out', join(dir, 'unmoved'), ...runnerFlagsOf(SETTINGS)]);
    unmoved = (await loadAdapter(new DirectorySource(join(dir, 'unmoved')), hf.config)).set!;
    vi.restoreAllMocks();
  });

  beforeEach(() => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => vi.restoreAllMocks());

  it('the page trains 2 of 4 steps, exports its run folder, and train --resume ZIP finishes it bit-identically', async () => {
    seen.status = 'idle';
    await session.startRun(runSpecOf(SETTINGS), false);
    await whenStatus('paused');
    expect(session.run!.trainer.stepsDone).toBe(2);

    const zip = await exportStoredRun(seen.runId);
    const files = unzipFolder(zip.bytes, zip.name);
    // The folder carries the data itself, and its hash.
    expect(files.get('data/data.jsonl')).toEqual(data);
    expect(JSON.parse(new TextDecoder().decode(files.get('run.json'))).dataSha256).toBe(sha256(data));
    const zipPath = join(dir, zip.name);
    await writeFile(zipPath, zip.bytes);
    await main(['train', '--resume', zipPath, '--model', model]);

    const moved = join(dir, zip.name.replace(/\.zip$/, ''));
    const metrics = (await readFile(join(moved, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    expect(metrics.length).toBe(4);
    expectSameBits(adapterBits(unmoved), adapterBits((await loadAdapter(new DirectorySource(moved), hf.config)).set!), 'moved to the runner at step 2');
    // The zip again: the folder it unpacked into holds the run's later steps and is never overwritten.
    await expect(main(['train', '--resume', zipPath, '--model', model])).rejects.toThrow(`${moved} exists already; continue the run there (--resume ${moved})`);
  });

  it('a folder whose data is not the data it was trained on is refused, naming the file and both hashes', async () => {
    const zip = await exportStoredRun(seen.runId);
    const folder = join(dir, 'tampered');
    for (const [path, bytes] of unzipFolder(zip.bytes, zip.name)) {
      await mkdir(dirname(join(folder, path)), { recursive: true });
      await writeFile(join(folder, path), bytes);
    }
    const other = new TextEncoder().encode(twoTypeDataset().replace('"no"', '"maybe"'));
    await writeFile(join(folder, 'data', 'data.jsonl'), other);
    const refusal = main(['train', '--resume', folder, '--model', model]);
    await expect(refusal).rejects.toThrow(join(folder, 'data', 'data.jsonl'));
    await expect(refusal).rejects.toThrow(sha256(other));
    await expect(refusal).rejects.toThrow(sha256(data));
    // The page refuses the same folder with the same words.
    const read = readRunFolder(await readFolder(folder), 'tampered');
    await expect(checkDataHash('tampered/data/data.jsonl', read.data!.bytes, read.setup.dataSha256)).rejects.toThrow(`SHA-256 ${sha256(other)} is not that of the data the run was trained on (SHA-256 ${sha256(data)}`);
  });

  it('a run folder the runner wrote at step 2 of 4 imports into the library and the page finishes it bit-identically', async () => {
    const out = join(dir, 'from-runner');
    await main(['train', '--model', model, '--data', join(dir, 'data.jsonl'), '--out', out, ...runnerFlagsOf(SETTINGS), '--stop-after', '2']);
    const read = readRunFolder(await readFolder(out), 'from-runner');
    expect(read.step).toBe(2);
    // The runner's folder names its data by path: the page checks the data it has loaded against the hash.
    expect(read.data).toBeNull();
    expect(read.setup.dataSha256).toBe(sha256(data));
    await checkDataHash('data.jsonl', data, read.setup.dataSha256);
    await storeImportedRun(read);

    seen.status = 'idle';
    await session.restoreRun(read.meta.runId);
    await whenStatus('done');
    expect(session.run!.trainer.stepsDone).toBe(4);
    expectSameBits(adapterBits(unmoved), adapterBits(await session.model.weights!.readAdapter()), 'moved to the page at step 2');
  });
});
