/**
 * Cross-check of the runner's eval loss against an independent numpy port of the official
 * LoRAMoE forward (tools/crosscheck/loramoe_numpy.py). Run from the repository root:
 *
 *   npx vite-node tools/crosscheck/run.mjs            (add --keep to keep the temporary folder)
 *
 * For each case it
 *   1. writes a tiny random Llama in Hugging Face layout (this project's src/test/hf-dir.ts) and a
 *      trained-like LoRAMoE adapter (random non-zero B, src/test/tiny-llama.ts randomAdapter) in the
 *      official key layout (src/loramoe/files.ts adapterFiles), plus an official-format data file
 *      with both task types and samples of different lengths (so rows are padded);
 *   2. runs the runner's eval command (src/cli/main.ts `main(['eval', ...])`) on the GPU;
 *   3. rebuilds the same batch the runner built (encodeOfficial + makeBatch), converts it to the
 *      Hugging Face layout the official code feeds its model, writes it as JSON, and runs the numpy
 *      port on the same model, adapter and batch with Q over real tokens, over all positions
 *      (the official code), and over all positions with the official flash-attention patch;
 *   4. prints the figures and their differences, and exits 1 when the GPU's ce or lbc differ from
 *      the numpy port's `--q-over real` figures by more than 1e-5 relative, or the counts differ.
 *
 * The batch conversion. This project shifts once, in makeBatch: targets[b*T + t] is the token the
 * row for position t must predict (ids[t+1] when t+1 is a target token, else -100), and the loss
 * reads targets directly. Hugging Face (and the official collator) keep labels unshifted,
 * labels[b][t] = ids[t] for a target token else -100, and LlamaForCausalLM shifts inside the loss
 * (logits[:, :-1] against labels[:, 1:]). So labels[b][0] = -100 and labels[b][t] = targets[b*T + t-1]
 * for t >= 1; the conversion checks that every non-ignored label equals the token at its position
 * and that targets[b*T + T-1] is -100 (nothing is lost by the shift). attention_mask is the batch's
 * `valid` (the official collator computes it as input_ids != pad_token_id; both agree here, checked).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import { nodeGpu } from '../../src/engine/node-gpu.ts';
import { makeBatch } from '../../src/data/batch.ts';
import { parseDataset } from '../../src/data/import.ts';
import { encodeOfficial } from '../../src/data/template.ts';
import { DirectorySource } from '../../src/io/node-files.ts';
import { defaultAdapterConfig } from '../../src/loramoe/config.ts';
import { adapterFiles } from '../../src/loramoe/files.ts';
import { binaryGroups } from '../../src/loramoe/groups.ts';
import { typeNamesFor } from '../../src/method/data-types.ts';
import { loadBackbone } from '../../src/model/load.ts';
import { ReferenceLlama } from '../../src/reference/llama.ts';
import { tinyHfFiles, writeFiles } from '../../src/test/hf-dir.ts';
import { randomAdapter, toRefAdapter, toRefWeights } from '../../src/test/tiny-llama.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const PY = join(HERE, 'loramoe_numpy.py');
const REL_TOL = 1e-5;

if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES) {
  // src/engine/node-gpu.ts falls back to SwiftShader when the installed drivers give no adapter, but
  // only its first call does: later calls retry the first (adapterless) instance and then refuse to
  // fall back because VK_ICD_FILENAMES is now set. This script calls the runner several times, so
  // when the fallback was needed, run again in a fresh process with the variable set from the start.
  const ctx = await nodeGpu();
  ctx.device.destroy();
  if (process.env.VK_ICD_FILENAMES) {
    console.error(`note: no adapter from the installed Vulkan drivers; rerunning with VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES}`);
    const args = ['vite-node', fileURLToPath(import.meta.url), ...(process.argv.includes('--keep') ? ['--keep'] : [])];
    const res = spawnSync('npx', args, { stdio: 'inherit', env: process.env });
    process.exit(res.status ?? 1);
  }
}

/** Official-format records: both task types, 6 to 19 tokens (every row but the longest is padded). */
const DATA = [
  { instruction: 'what color is the sky ?', input: '', output: 'blue .', task_type: 1 },
  { instruction: 'is the cat big ?', input: 'the cat is small .', output: 'no . the cat is small .', task_type: 0 },
  { instruction: 'what color is the mat ?', input: '', output: 'red .', task_type: 1 },
  { instruction: 'the cat sat on', input: '', output: 'the mat .', task_type: 0 },
  { instruction: 'is the dog small ?', input: 'the dog is big .', output: 'no .', task_type: 0 },
  { instruction: 'what', input: '', output: 'a dog ?', task_type: 1 },
];

const CASES = [
  {
    name: 'tied head, F32 weights, 4 experts r 2 alpha 4, delta 0.1 beta 0.1',
    hf: { seed: 3 },
    adapter: { numExperts: 4, rank: 2, alpha: 4, lbcDelta: 0.1, lbcBeta: 0.1 },
    seed: 11,
  },
  {
    name: 'untied head, BF16 weights, 8 experts r 4 alpha 32 (official defaults), delta 0.2 beta 0.5',
    hf: { seed: 5, dtype: 'BF16', config: { tie_word_embeddings: false } },
    adapter: { numExperts: 8, rank: 4, alpha: 32, lbcDelta: 0.2, lbcBeta: 0.5 },
    seed: 12,
  },
];

/** Runs fn with console.log captured; returns what it printed. */
async function captureLog(fn) {
  const lines = [];
  const log = console.log;
  console.log = (...a) => void lines.push(a.map(String).join(' '));
  try {
    await fn();
  } finally {
    console.log = log;
  }
  return lines.join('\n');
}

function python(args) {
  const res = spawnSync('python3', [PY, ...args], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`python3 ${PY} ${args.join(' ')} failed (${res.status}):\n${res.stderr}`);
  if (res.stderr.trim()) process.stderr.write(res.stderr.replace(/^/gm, '  [numpy] '));
  return JSON.parse(res.stdout);
}

/** The project's batch (shifted targets) as the official/Hugging Face batch (unshifted labels). */
function toHfBatch(batch, taskTypes, padId) {
  const { B, T, ids, targets, valid } = batch;
  const rows = (f) => Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => f(b, t)));
  const input_ids = rows((b, t) => ids[b * T + t]);
  const attention_mask = rows((b, t) => valid[b * T + t]);
  const labels = rows((b, t) => (t === 0 ? -100 : targets[b * T + t - 1]));
  for (let b = 0; b < B; b++) {
    if (targets[b * T + T - 1] !== -100) throw new Error(`row ${b}: the last position has a target; the HF shift would drop it`);
    for (let t = 0; t < T; t++) {
      if (labels[b][t] !== -100 && labels[b][t] !== input_ids[b][t]) throw new Error(`row ${b} position ${t}: label ${labels[b][t]} is not the token there (${input_ids[b][t]})`);
      if (attention_mask[b][t] !== (input_ids[b][t] !== padId ? 1 : 0)) throw new Error(`row ${b} position ${t}: valid differs from input_ids != pad_token_id`);
    }
  }
  return { input_ids, labels, attention_mask, task_types: taskTypes };
}

const rel = (a, b) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
const fmt = (x) => (typeof x === 'number' ? x.toPrecision(10) : String(x));

async function runCase(c, root, index) {
  const dir = join(root, `case${index}`);
  const modelDir = join(dir, 'model');
  const adapterDir = join(dir, 'adapter');
  const dataFile = join(dir, 'data.json');
  const batchFile = join(dir, 'batch.json');

  // 1. Model, adapter and data files.
  const hf = tinyHfFiles(c.hf);
  await writeFiles(modelDir, hf.files);
  const dataBytes = new TextEncoder().encode(JSON.stringify(DATA));
  await writeFile(dataFile, dataBytes);
  const imported = await parseDataset(dataBytes, 'data.json');
  const names = typeNamesFor(imported.records.map((r) => r.type));
  const cfg = { ...defaultAdapterConfig('loramoe'), ...c.adapter, groups: binaryGroups(names, c.adapter.numExperts) };
  const set = randomAdapter(hf.config, cfg, c.seed);
  await writeFiles(adapterDir, adapterFiles(cfg, hf.config, set, 'tiny-llama', names));

  // 2. The runner's eval on the GPU.
  // --lbc-importance sum: the numpy port's `--q-over real` sums Q over real tokens (an official
  // adapter file reads as "mean", which matches the official code at its batch of one, checked below).
  const gpu = JSON.parse(await captureLog(() => main(['eval', '--model', modelDir, '--adapter', adapterDir, '--data', dataFile, '--lbc-importance', 'sum'])));
  // ... and with --batch 1: one sample per batch (still padded to the longest sample), CE averaged
  // over target tokens, LBC over batches.
  const gpu1 = JSON.parse(await captureLog(() => main(['eval', '--model', modelDir, '--adapter', adapterDir, '--data', dataFile, '--batch', '1'])));

  // 3. The same batch (the runner: whole file as one batch, T = longest sample, --max-length 256).
  const backbone = await loadBackbone(new DirectorySource(modelDir));
  const tok = backbone.tokenizer;
  const samples = imported.records.map((r) => encodeOfficial(tok, r, 256));
  const T = Math.max(...samples.map((s) => s.ids.length));
  const batch = makeBatch(samples, samples.length, T, tok.padId, (t) => names.indexOf(t));
  const taskTypes = DATA.map((r) => r.task_type);
  // Type index t = official task_type t: names are ["downstream task", "world knowledge"].
  if (taskTypes.some((tt, b) => batch.types[b] !== tt)) throw new Error(`type indices ${[...batch.types]} differ from the task types ${taskTypes}`);
  const hfBatch = toHfBatch(batch, taskTypes, tok.padId);
  await writeFile(batchFile, JSON.stringify(hfBatch));
  const padded = hfBatch.attention_mask.filter((row) => row.includes(0)).length;

  const base = ['--model', modelDir, '--adapter', adapterDir, '--batch', batchFile];
  const real = python([...base, '--q-over', 'real', '--per-sample']);
  const all = python([...base, '--q-over', 'all']);
  const allFlash = python([...base, '--q-over', 'all', '--pad-attn', 'flash']);
  const realF64Rope = python([...base, '--q-over', 'real', '--rope-tables', 'f64']);

  // The project's own float64 reference (src/reference), for a third opinion (Q summed over real
  // tokens, as the runner above).
  const ref = new ReferenceLlama(backbone.config, toRefWeights(backbone.weights), { ...cfg, lbcImportance: 'sum' }, toRefAdapter(set), T).forward(
    { B: batch.B, T: batch.T, ids: batch.ids, targets: batch.targets, valid: batch.valid, types: batch.types },
    { dropout: 0, seed: 0 },
  );

  // The LBC of perfectly uniform routing (every router weight 1/N) on this batch: Q[b, n] = len_b / N
  // over real tokens, T / N over all positions; Z = Q * I. Over all positions this is the boost's
  // spread alone; over real tokens the spread of the row lengths adds to it, whatever the router does.
  const lens = Array.from({ length: batch.B }, (_, b) => batch.valid.subarray(b * T, (b + 1) * T).reduce((a, v) => a + v, 0));
  const N = cfg.numExperts;
  const cv2 = (zs) => {
    const mean = zs.reduce((a, z) => a + z, 0) / zs.length;
    const variance = zs.reduce((a, z) => a + (z - mean) ** 2, 0) / (zs.length - 1);
    return variance / (mean * mean + 1e-10);
  };
  const boost = (b, n) => ((taskTypes[b] === 1) === (n < N / 2) ? 1 + cfg.lbcDelta : 1 - cfg.lbcDelta);
  const uniformZ = (rowLen) => lens.flatMap((l, b) => Array.from({ length: N }, (_, n) => (rowLen(l) / N) * boost(b, n)));
  const projections = hf.config.numLayers * cfg.targets.length;
  const uniformReal = projections * cfg.lbcBeta * cv2(uniformZ((l) => l));
  const uniformAll = projections * cfg.lbcBeta * cv2(uniformZ(() => T));

  // 4. Report and compare.
  console.log(`\n== case ${index + 1}: ${c.name}`);
  console.log(`   batch B ${batch.B} T ${T}, ${padded} padded rows, ${batch.tokenCount} real tokens of ${batch.B * T}, ${batch.targetCount} targets, task types [${taskTypes}]`);
  const rows = [
    ['GPU runner eval (Q over real tokens)', gpu.ce, gpu.lbc, gpu.tokens],
    ['numpy, --q-over real', real.ce, real.lbc, real.count],
    ['numpy, --q-over real, --rope-tables f64', realF64Rope.ce, realF64Rope.lbc, realF64Rope.count],
    ['project float64 reference (src/reference)', ref.ce, ref.lbc, ref.count],
    ['numpy, --q-over all (official)', all.ce, all.lbc, all.count],
    ['numpy, --q-over all --pad-attn flash (official script)', allFlash.ce, allFlash.lbc, allFlash.count],
    ['GPU runner eval --batch 1', gpu1.ce, gpu1.lbc, gpu1.tokens],
    ['numpy, each row alone (official script: batch 1)', real.per_sample.ce, real.per_sample.lbc, real.per_sample.count],
  ];
  for (const [what, ce, lbc, count] of rows) console.log(`   ${what.padEnd(56)} ce ${fmt(ce)}  lbc ${fmt(lbc)}  count ${count}`);
  const dCe = rel(gpu.ce, real.ce);
  const dLbc = rel(gpu.lbc, real.lbc);
  console.log(`   GPU vs numpy real:       ce rel diff ${dCe.toExponential(3)}, lbc rel diff ${dLbc.toExponential(3)} (tolerance ${REL_TOL})`);
  console.log(`   reference vs numpy real: ce rel diff ${rel(ref.ce, real.ce).toExponential(3)}, lbc rel diff ${rel(ref.lbc, real.lbc).toExponential(3)}`);
  const dCe1 = rel(gpu1.ce, real.per_sample.ce);
  const dLbc1 = rel(gpu1.lbc, real.per_sample.lbc);
  console.log(`   GPU --batch 1 vs numpy rows alone: ce rel diff ${dCe1.toExponential(3)}, lbc rel diff ${dLbc1.toExponential(3)}`);
  console.log(`   HF Trainer eval_loss with batch 1 (mean over samples of ce + lbc): ${fmt(real.per_sample.trainer_eval_loss)}; runner --batch 1 loss ${fmt(gpu1.loss)}`);
  console.log(`   LBC of uniform routing on this batch (row lengths [${lens}]): Q over real tokens ${fmt(uniformReal)}, over all positions ${fmt(uniformAll)}`);
  console.log(`   official (all) vs real:  lbc ${fmt(all.lbc)} vs ${fmt(real.lbc)}: ${fmt(all.lbc - real.lbc)} (${(100 * (all.lbc / real.lbc - 1)).toFixed(2)} %); with flash attention ${fmt(allFlash.lbc - real.lbc)} (${(100 * (allFlash.lbc / real.lbc - 1)).toFixed(2)} %)`);

  const failures = [];
  if (gpu.tokens !== real.count) failures.push(`target counts differ: GPU ${gpu.tokens}, numpy ${real.count}`);
  if (!(dCe <= REL_TOL)) failures.push(`ce differs: GPU ${gpu.ce}, numpy ${real.ce} (relative ${dCe})`);
  if (!(dLbc <= REL_TOL)) failures.push(`lbc differs: GPU ${gpu.lbc}, numpy ${real.lbc} (relative ${dLbc})`);
  if (gpu1.tokens !== real.per_sample.count) failures.push(`--batch 1 target counts differ: GPU ${gpu1.tokens}, numpy ${real.per_sample.count}`);
  if (!(dCe1 <= REL_TOL)) failures.push(`--batch 1 ce differs: GPU ${gpu1.ce}, numpy ${real.per_sample.ce} (relative ${dCe1})`);
  if (!(dLbc1 <= REL_TOL)) failures.push(`--batch 1 lbc differs: GPU ${gpu1.lbc}, numpy ${real.per_sample.lbc} (relative ${dLbc1})`);
  if (!(real.lbc > 0)) failures.push('numpy lbc is 0: the check would not exercise the LBC');
  if (all.ce !== real.ce) failures.push('ce should not depend on --q-over');
  if (padded === 0) failures.push('no padded row: the real/all difference is not exercised');
  return { name: c.name, failures, gpu, gpu1, real, all, allFlash, ref };
}

const keep = process.argv.includes('--keep');
const root = await mkdtemp(join(tmpdir(), 'loramoe-crosscheck-'));
let failed = 0;
try {
  for (const [i, c] of CASES.entries()) {
    const r = await runCase(c, root, i);
    for (const f of r.failures) console.log(`   FAIL: ${f}`);
    if (r.failures.length > 0) failed++;
    else console.log('   ok');
  }
} finally {
  if (keep) console.log(`\nfiles kept in ${root}`);
  else await rm(root, { recursive: true, force: true });
}
console.log(failed === 0 ? `\ncrosscheck passed (${CASES.length} cases)` : `\ncrosscheck FAILED (${failed} of ${CASES.length} cases)`);
process.exit(failed === 0 ? 0 : 1);
