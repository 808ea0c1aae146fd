/**
 * Pretraining the demo backbone from scratch with the project's own engine (full fine-tuning mode
 * from a random initialisation) on the demo's pretraining corpus (src/demo/build.ts), then scoring
 * the knowledge probe and the base model's (weak) ability on the held-out task examples.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeOfficial, type EncodedSample } from '../data/template';
import type { TextTokenizer } from '../data/tokenizer';
import { loadTokenizer } from '../data/tokenizer';
import { describeAdapter, type GpuContext } from '../engine/gpu';
import { writeSafetensors } from '../io/safetensors';
import { defaultAdapterConfig } from '../loramoe/config';
import { expectedTensorNames, parseModelConfig } from '../model/config';
import { initLlamaWeights } from '../model/init';
import { GpuWeights } from '../model/weights';
import { exactMatchProbe } from '../train/probe';
import { defaultTrainSettings, Trainer } from '../train/trainer';
import { buildDemoData, DEFAULT_DEMO_DATA, DEMO_MAX_TOKENS, demoConfigJson, demoTextFiles, type PretrainItem } from './build';

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

/** A pretraining item as a training sample: a plain sentence is all target after <s>. */
export function encodePretrainItem(tok: TextTokenizer, item: PretrainItem, maxLength: number): EncodedSample {
  if (item.kind === 'qa') {
    const s = encodeOfficial(tok, item.record, maxLength);
    if (s.truncated) throw new Error(`pretraining question longer than ${maxLength} tokens: "${item.record.instruction}"`);
    return s;
  }
  const ids = [...tok.encode(item.text, true), tok.eosId];
  if (ids.length > maxLength) throw new Error(`pretraining sentence longer than ${maxLength} tokens: "${item.text}"`);
  return { ids, promptLength: 1, truncated: false, type: item.type };
}

export async function pretrainDemo(ctx: GpuContext, o: PretrainOptions): Promise<{ probeAccuracy: number; allAccuracy: number; tasks: Record<string, number>; seconds: number }> {
  const t0 = performance.now();
  const data = buildDemoData({ ...DEFAULT_DEMO_DATA, seed: o.seed });
  const tok = loadTokenizer(data.tokenizerJson, data.tokenizerConfig);
  const configJson = demoConfigJson(data.vocabSize, o.size);
  const config = parseModelConfig(configJson);
  const samples = data.pretrain.map((item) => encodePretrainItem(tok, item, DEMO_MAX_TOKENS));
  const T = Math.max(...samples.map((s) => s.ids.length));
  const count = (kind: string) => data.pretrain.filter((p) => p.kind === 'qa' && (p.record.type === 'world knowledge') === (kind === 'facts')).length;
  o.log(
    `demo backbone: ${JSON.stringify(o.size)}, vocabulary ${data.vocabSize}, pretraining corpus of ${samples.length} documents ` +
      `(${count('facts')} fact questions, ${data.pretrain.filter((p) => p.kind === 'text').length} sentences, ${count('tasks')} task examples), ` +
      `sequence ${T}, on ${describeAdapter(ctx.adapter)}`,
  );
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
  const facts = new Map(data.pretrain.flatMap((p) => (p.kind === 'qa' && p.record.type === 'world knowledge' ? [[p.record.instruction, p.record] as const] : [])));
  const all = await exactMatchProbe(ctx, weights, tok, [...facts.values()]);
  const te = await exactMatchProbe(ctx, weights, tok, data.taskEval);
  const tasks: Record<string, number> = {};
  for (const [t, v] of Object.entries(te.byType)) tasks[t] = v.accuracy;
  const host = await weights.readBackbone();
  weights.destroy();
  const files = demoTextFiles(data, configJson);
  await mkdir(o.out, { recursive: true });
  for (const [name, text] of Object.entries(files.model)) await writeFile(join(o.out, name), text);
  const tensors = expectedTensorNames(config).map(({ name, shape }) => ({ name, dtype: 'F32' as const, shape, data: host.get(name)! }));
  await writeFile(join(o.out, 'model.safetensors'), writeSafetensors(tensors, { format: 'pt' }));
  await mkdir(o.dataOut, { recursive: true });
  for (const [name, text] of Object.entries(files.data)) await writeFile(join(o.dataOut, name), text);
  const seconds = (performance.now() - t0) / 1000;
  o.log(`knowledge probe (held-out quarter of the facts): ${(probe.accuracy * 100).toFixed(1)}% exact match; all facts: ${(all.accuracy * 100).toFixed(1)}%; ${seconds.toFixed(0)} s`);
  o.log(`base model on the held-out task examples: ${Object.entries(tasks).map(([t, v]) => `${t} ${(v * 100).toFixed(1)}%`).join(', ')}`);
  return { probeAccuracy: probe.accuracy, allAccuracy: all.accuracy, tasks, seconds };
}
