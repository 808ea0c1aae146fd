/**
 * Dispatches, bytes bound and peak GPU memory of one LoRAMoE training step (8 experts of rank 4
 * on the FFN projections, LBC on, the official defaults) against the analytic need, for the demo
 * backbone's and SmolLM2-135M's shapes at B sequences of T tokens. Counts, not times: the numbers
 * do not depend on the machine's load.
 *
 *   npx vite-node tools/bench/step-stats-cli.ts [--batch 1] [--seq 256] [--mode loramoe|lora|full] [--json FILE]
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { EncodedSample } from '../../src/data/template';
import { nodeGpu } from '../../src/engine/node-gpu';
import { defaultAdapterConfig } from '../../src/loramoe/config';
import { type AdapterMode } from '../../src/method/adapter';
import { initAdapter } from '../../src/loramoe/init';
import type { ModelConfig } from '../../src/model/config';
import { GpuWeights } from '../../src/model/weights';
import { randomWeights } from '../../src/test/tiny-llama';
import { defaultTrainSettings, Trainer } from '../../src/train/trainer';
import { Rng } from '../../src/util/random';
import { benchConfig, DEMO_CONFIG_JSON, SMOLLM2_135M_CONFIG_JSON } from './shapes';
import { memoryNeed, peakBytes, stepCounts, stepFlops } from './step-stats';

const { values } = parseArgs({ options: { batch: { type: 'string' }, seq: { type: 'string' }, mode: { type: 'string' }, json: { type: 'string' } } });
const B = Number(values.batch ?? 1);
const T = Number(values.seq ?? 256);
const mode = (values.mode ?? 'loramoe') as AdapterMode;
const ctx = await nodeGpu();

const MiB = 2 ** 20;
const rows: Record<string, unknown>[] = [];
for (const [name, cfg] of [['demo', benchConfig(DEMO_CONFIG_JSON)], ['SmolLM2-135M', benchConfig(SMOLLM2_135M_CONFIG_JSON)]] as [string, ModelConfig][]) {
  const adapterCfg = { ...defaultAdapterConfig(mode), dropout: 0 };
  if (mode === 'loramoe') adapterCfg.groups = [[0, 1, 2, 3], [4, 5, 6, 7]];
  const host = randomWeights(cfg, 1);
  const rng = new Rng(2);
  const samples: EncodedSample[] = Array.from({ length: 4 }, (_, i) => ({ ids: Array.from({ length: T }, () => rng.int(cfg.vocabSize)), promptLength: T / 2, truncated: false, type: i % 2 ? 'world knowledge' : 'task' }));
  const settings = { ...defaultTrainSettings(), batchSize: B, maxLength: T, steps: 2, lr: 1e-4 };
  const { peak, value: trainer } = await peakBytes(
    ctx,
    () => {
      const weights = new GpuWeights(ctx, cfg, host, adapterCfg, initAdapter(cfg, adapterCfg, 3), T);
      return new Trainer(ctx, weights, samples, (t) => (t === 'world knowledge' ? 0 : 1), ['world knowledge', 'task'], settings, 0);
    },
    async (t) => {
      const m = await t.step();
      if (!Number.isFinite(m.loss)) throw new Error(`${name}: the step's loss is ${m.loss}`);
    },
  );
  const counts = stepCounts(trainer);
  const need = memoryNeed(cfg, adapterCfg, B, T);
  const flops = stepFlops(cfg, adapterCfg, B, T);
  trainer.destroy();
  trainer.weights.destroy();
  const row = { shape: name, mode, B, T, ...counts, peakBytes: peak, need, flops };
  rows.push(row);
  console.log(
    `${name} (${mode}, B=${B}, T=${T}): ${counts.dispatches} dispatches in ${counts.submissions} submission(s), ` +
      `${(counts.boundBytes / MiB).toFixed(1)} MiB bound per step, ${(flops.total / 1e9).toFixed(2)} GFLOP; ` +
      `peak ${(peak / MiB).toFixed(1)} MiB vs need ${(need.total / MiB).toFixed(1)} MiB ` +
      `(weights ${(need.weights / MiB).toFixed(1)}, adapter ${(need.adapter / MiB).toFixed(2)}, optimizer ${(need.optimizer / MiB).toFixed(2)}, activations ${(need.activations / MiB).toFixed(1)}) = ${(peak / need.total).toFixed(3)}x`,
  );
}
if (values.json) await writeFile(values.json, JSON.stringify(rows, null, 1));
