/**
 * Pretraining the demo backbone from scratch with the project's own engine (full fine-tuning mode
 * from a random initialisation) on the world-knowledge corpus, then scoring the knowledge probe.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeOfficial } from '../data/template';
import { loadTokenizer } from '../data/tokenizer';
import { describeAdapter, type GpuContext } from '../engine/gpu';
import { writeSafetensors } from '../io/safetensors';
import { defaultAdapterConfig } from '../loramoe/config';
import { expectedTensorNames, parseModelConfig } from '../model/config';
import { initLlamaWeights } from '../model/init';
import { GpuWeights } from '../model/weights';
import { exactMatchProbe } from '../train/probe';
import { defaultTrainSettings, Trainer } from '../train/trainer';
import { buildDemoData, DEFAULT_DEMO_DATA, demoConfigJson } from './build';

export interface PretrainOptions {
  out: string;
  dataOut: string;
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  size: { hidden: number; layers: number; ffn: number; heads: number; kvHeads: number };
  log: (line: string) => void;
}

export const DEMO_SIZE = { hidden: 96, layers: 3, ffn: 256, heads: 4, kvHeads: 2 };

const jsonl = (records: readonly object[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

export async function pretrainDemo(ctx: GpuContext, o: PretrainOptions): Promise<{ probeAccuracy: number; allAccuracy: number; seconds: number }> {
  const t0 = performance.now();
  const data = buildDemoData({ ...DEFAULT_DEMO_DATA, seed: o.seed });
  const tok = loadTokenizer(data.tokenizerJson, data.tokenizerConfig);
  const configJson = demoConfigJson(data.vocabSize, o.size);
  const config = parseModelConfig(configJson);
  const samples = data.pretrain.map((r) => encodeOfficial(tok, r, 64));
  const T = Math.max(...samples.map((s) => s.ids.length));
  o.log(`demo backbone: ${JSON.stringify(o.size)}, vocabulary ${data.vocabSize}, ${samples.length} facts, sequence ${T}, on ${describeAdapter(ctx.adapter)}`);
  const cfg = defaultAdapterConfig('full');
  const weights = new GpuWeights(ctx, config, initLlamaWeights(config, o.seed), cfg, null, T);
  const settings = { ...defaultTrainSettings(), lr: o.lr, steps: o.steps, batchSize: o.batchSize, maxLength: T, warmupRatio: 0.05, weightDecay: 0, seed: o.seed };
  const trainer = new Trainer(ctx, weights, samples, () => 0, ['world knowledge'], settings, tok.padId);
  for (let i = 0; i < o.steps; i++) {
    const m = await trainer.step();
    if (m.step % 25 === 0 || m.step === o.steps) o.log(`pretrain step ${m.step}/${o.steps}  ce ${m.ce.toFixed(4)}  lr ${m.lr.toExponential(2)}  ${(m.tokensPerSecond).toFixed(0)} tok/s`);
  }
  trainer.destroy();
  const probe = await exactMatchProbe(ctx, weights, tok, data.probe);
  const all = await exactMatchProbe(ctx, weights, tok, data.pretrain);
  const host = await weights.readBackbone();
  weights.destroy();
  await mkdir(o.out, { recursive: true });
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2) + '\n');
  await writeFile(join(o.out, 'config.json'), enc(configJson));
  await writeFile(join(o.out, 'tokenizer.json'), enc(data.tokenizerJson));
  await writeFile(join(o.out, 'tokenizer_config.json'), enc(data.tokenizerConfig));
  const tensors = expectedTensorNames(config).map(({ name, shape }) => ({ name, dtype: 'F32' as const, shape, data: host.get(name)! }));
  await writeFile(join(o.out, 'model.safetensors'), writeSafetensors(tensors, { format: 'pt' }));
  await mkdir(o.dataOut, { recursive: true });
  await writeFile(join(o.dataOut, 'demo-train.jsonl'), jsonl(data.train));
  await writeFile(join(o.dataOut, 'demo-probe.jsonl'), jsonl(data.probe));
  await writeFile(join(o.dataOut, 'demo-task-eval.jsonl'), jsonl(data.taskEval));
  const seconds = (performance.now() - t0) / 1000;
  o.log(`knowledge probe (held-out quarter of the facts): ${(probe.accuracy * 100).toFixed(1)}% exact match; all facts: ${(all.accuracy * 100).toFixed(1)}%; ${seconds.toFixed(0)} s`);
  return { probeAccuracy: probe.accuracy, allAccuracy: all.accuracy, seconds };
}
