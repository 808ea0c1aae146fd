/**
 * Every view with made-up data, for manual checking and the e2e test (open the page with
 * `?views-demo`). Nothing here comes from a model: the numbers are generated from a fixed seed.
 */
import { useState } from 'react';
import { probeResultOf } from '../../train/probe-result';
import { ChatTranscript } from './ChatTranscript';
import { GroupShareChart } from './GroupShareChart';
import { LossCharts } from './LossCharts';
import { ProbeView } from './ProbeView';
import { RoutingHeatmap } from './RoutingHeatmap';
import type { ChatToken, ExpertGroup, ProbeResult, Projection, RoutingSummary, StepMetrics } from './types';
import './views.css';

/** The probe question that carries an HTML payload: it must show up as text. */
const DEMO_HTML_QUESTION = 'What does <img src=x onerror=alert(1)> do?';

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function softmax(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const N = 8;
const LAYERS = 12;
const PROJECTIONS: Projection[] = ['gate_proj', 'up_proj', 'down_proj'];

const GROUPS: ExpertGroup[] = [
  { name: 'downstream task', experts: [4, 5, 6, 7], color: '#e0861b', types: ['downstream task'] },
  { name: 'world knowledge', experts: [0, 1, 2, 3], color: '#238b7e', types: ['world knowledge'] },
];

/** Router weights of one token: leaning towards `group` (or none), more so in deeper layers. */
function routerWeights(rand: () => number, layer: number, lean: number | null, strength: number): number[] {
  const depth = 0.3 + (0.7 * layer) / (LAYERS - 1);
  const logits = Array.from({ length: N }, (_, e) => {
    const inGroup = lean !== null && GROUPS[lean].experts.includes(e);
    return 0.6 * (rand() - 0.5) + (inGroup ? strength * depth : 0) + (e === 5 ? 0.35 : 0);
  });
  return softmax(logits);
}

/** The official direction at delta 0.1: its optimum is (1 - 0.1) / 2 = 0.45 on a sample's own group. */
const DEMO_CONSTRAINT: RoutingSummary['constraint'] = { direction: 'official', importance: 'mean', delta: 0.1, beta: 0.1 };

function makeSummary(): RoutingSummary {
  const rand = prng(7);
  const types = ['downstream task', 'world knowledge', 'held-out (none yet)'];
  const tokens = [18_432, 9_216, 0];
  const mean = types.map((_, t) =>
    Array.from({ length: LAYERS }, (_, l) =>
      PROJECTIONS.map((_, p) => (tokens[t] > 0 ? routerWeights(rand, l, t, 1.1 + 0.25 * p) : new Array<number>(N).fill(NaN))),
    ),
  );
  const groupMean = mean.map((perType) =>
    GROUPS.map((g) => {
      let s = 0;
      for (const perLayer of perType) for (const row of perLayer) for (const e of g.experts) s += row[e];
      return s / (LAYERS * PROJECTIONS.length);
    }),
  );
  const ownGroup = types.map((type, t) => ({ type, samples: tokens[t] > 0 ? Math.round(tokens[t] / 12) : 0, share: groupMean[t][t] ?? NaN, target: t < GROUPS.length ? 0.45 : null }));
  return { types, layers: LAYERS, projections: PROJECTIONS, experts: N, tokens, mean, groupMean, ownGroup, constraint: DEMO_CONSTRAINT };
}

function makeSteps(count: number, withLbc: boolean): StepMetrics[] {
  const rand = prng(withLbc ? 11 : 13);
  const warmup = Math.max(1, Math.round(0.03 * count));
  return Array.from({ length: count }, (_, i) => {
    const step = i + 1;
    const progress = step / count;
    const lr = step <= warmup ? (2e-4 * step) / warmup : 2e-4 * 0.5 * (1 + Math.cos((Math.PI * (step - warmup)) / (count - warmup)));
    const ce = 1.05 + 2.1 * Math.exp(-6 * progress) + 0.18 * (rand() - 0.5);
    const lbc = withLbc ? 0.012 + 0.03 * Math.exp(-4 * progress) + 0.004 * rand() : 0;
    const skipped = withLbc && (step === 612 || step === 1033);
    const gradNorm = skipped ? Infinity : 0.4 + 1.6 * Math.exp(-3 * progress) + 0.3 * rand();
    const tokens = 1024;
    const tokensPerSecond = 880 + 140 * rand() - (step < 5 ? 500 : 0);
    return { step, ce, lbc, loss: ce + lbc, gradNorm, lr, tokens, tokensPerSecond, skipped, epoch: Math.floor(progress * 0.999) };
  });
}

const QUESTIONS: Array<{ q: string; gold: string; type: string; before: boolean; after: boolean }> = [
  { q: 'What is the capital of France?', gold: 'Paris', type: 'world knowledge', before: true, after: true },
  { q: 'Which planet is known as the Red Planet?', gold: 'Mars', type: 'world knowledge', before: true, after: true },
  { q: 'Who wrote "Pride and Prejudice"?', gold: 'Jane Austen', type: 'world knowledge', before: true, after: false },
  { q: DEMO_HTML_QUESTION, gold: 'nothing: it is text', type: 'world knowledge', before: false, after: false },
  { q: 'What is the largest ocean on Earth?', gold: 'Pacific', type: 'world knowledge', before: false, after: true },
  { q: 'In which year did the Berlin Wall fall?', gold: '1989', type: 'world knowledge', before: true, after: true },
  { q: 'What is the chemical symbol for gold?', gold: 'Au', type: 'world knowledge', before: true, after: true },
  { q: 'What is the capital of Australia?', gold: 'Canberra', type: 'world knowledge', before: false, after: false },
  { q: 'Classify the sentiment:\nThe film was a delight from start to finish.', gold: 'positive', type: 'downstream task', before: false, after: true },
  { q: 'Classify the sentiment:\nI want those two hours back.', gold: 'negative', type: 'downstream task', before: true, after: true },
  { q: 'Translate to German: good morning', gold: 'Guten Morgen', type: 'downstream task', before: false, after: true },
  { q: 'Does the premise entail the hypothesis?\nA man is sleeping. / A person rests.', gold: 'yes', type: 'downstream task', before: false, after: false },
];

function makeProbe(which: 'before' | 'after'): ProbeResult {
  const rand = prng(which === 'before' ? 21 : 23);
  const items = QUESTIONS.map((x) => {
    const correct = x[which];
    return {
      question: x.q,
      gold: x.gold,
      type: x.type,
      correct,
      logLikelihood: correct ? -0.3 - 1.2 * rand() : -3 - 4 * rand(),
      greedyPrefix: correct ? '' : x.gold === 'Jane Austen' ? 'Charlotte' : x.gold === 'Canberra' ? 'Sydney' : x.gold.startsWith('nothing') ? '<b>' : 'the',
    };
  });
  return probeResultOf(items);
}

function makeChat(): ChatToken[] {
  const rand = prng(31);
  // [text, group it leans to (index into GROUPS) or null for no routing, strength]
  const words: Array<[string, number | null, number]> = [
    ['Answer', null, 0], [':', null, 0], [' The', 1, 0.4], [' capital', 1, 1.6], [' of', 1, 0.5], [' France', 1, 2.2], [' is', 1, 0.6],
    [' Paris', 1, 2.6], ['.', 0, 0.3], ['\n', 0, 0.2], ['Sent', 0, 1.2], ['iment', 0, 1.8], [':', 0, 0.9], [' positive', 0, 2.4],
    ['.', 0, 0.5], [' Tags', 0, 0.4], [' like', 1, 0.1], [' <b>', 0, 0.7], ['not bold', 0, 0.3], ['</b>', 0, 0.7],
    [' stay', 1, 0.2], [' text', 0, 0.2], ['.', 0, 0.1],
  ];
  const tokens: ChatToken[] = words.map(([text, lean, strength], id) => {
    if (lean === null) return { id: 1000 + id, text };
    const perLayer: Record<string, number[]> = {};
    for (let l = 0; l < LAYERS; l++) for (const p of PROJECTIONS) perLayer[`${l}.${p}`] = routerWeights(rand, l, lean, strength);
    const rows = Object.values(perLayer);
    const groupShares = GROUPS.map((g) => rows.reduce((s, w) => s + g.experts.reduce((a, e) => a + w[e], 0), 0) / rows.length);
    return { id: 1000 + id, text, groupShares, perLayer };
  });
  // The answer ends with the end-of-sequence token, which is not text.
  return [...tokens, { id: 2, text: '</s>', special: true }];
}

const SUMMARY = makeSummary();
const STEPS = makeSteps(1500, true);
const LORA_STEPS = makeSteps(60, false);
const BEFORE = makeProbe('before');
const AFTER = makeProbe('after');
const CHAT = makeChat();
/** What the views show before anything ran: no steps, no routed tokens, no probe, no text. */
const EMPTY_SUMMARY: RoutingSummary = {
  types: ['downstream task', 'world knowledge'],
  layers: LAYERS,
  projections: PROJECTIONS,
  experts: N,
  tokens: [0, 0],
  mean: [0, 1].map(() => Array.from({ length: LAYERS }, () => PROJECTIONS.map(() => new Array<number>(N).fill(NaN)))),
  groupMean: [0, 1].map(() => GROUPS.map(() => NaN)),
  ownGroup: ['downstream task', 'world knowledge'].map((type) => ({ type, samples: 0, share: NaN, target: null })),
  constraint: DEMO_CONSTRAINT,
};

/** All five views on one page with sample data. */
export function ViewsDemo() {
  const [projection, setProjection] = useState<Projection>('gate_proj');
  return (
    <div className="app views-demo" data-testid="views-demo">
      <header className="app-header">
        <h1>LoRAMoE Playground: views</h1>
        <p className="tagline">Every view with made-up data, for checking how they look. Nothing here was trained.</p>
      </header>
      <section className="panel" data-testid="demo-loss">
        <h2>Training curves</h2>
        <p className="muted">LoRAMoE, 1,500 steps (drawn downsampled).</p>
        <LossCharts points={STEPS} />
      </section>
      <section className="panel" data-testid="demo-loss-lora">
        <h2>Training curves, plain LoRA</h2>
        <p className="muted">No router, so no balancing constraint.</p>
        <LossCharts points={LORA_STEPS} />
      </section>
      <section className="panel" data-testid="demo-heatmap">
        <h2>Routing per expert and layer</h2>
        <p className="muted">Mean router weight of each expert, per data type (official grouping: world knowledge to experts 0–3).</p>
        <RoutingHeatmap summary={SUMMARY} groups={GROUPS} projection={projection} onProjectionChange={setProjection} />
      </section>
      <section className="panel" data-testid="demo-group-share">
        <h2>Router weight per expert group</h2>
        <GroupShareChart summary={SUMMARY} groups={GROUPS} />
      </section>
      <section className="panel" data-testid="demo-probe">
        <h2>Knowledge probe</h2>
        <ProbeView before={BEFORE} after={AFTER} />
      </section>
      <section className="panel" data-testid="demo-chat">
        <h2>Chat</h2>
        <ChatTranscript tokens={CHAT} groups={GROUPS} />
      </section>
      <section className="panel" data-testid="demo-empty">
        <h2>Before anything ran</h2>
        <p className="muted">The same views with no data yet.</p>
        <LossCharts points={[]} />
        <RoutingHeatmap summary={EMPTY_SUMMARY} groups={GROUPS} projection={projection} onProjectionChange={setProjection} />
        <GroupShareChart summary={EMPTY_SUMMARY} groups={GROUPS} />
        <ProbeView before={null} after={null} />
        <ChatTranscript tokens={[]} groups={GROUPS} />
      </section>
    </div>
  );
}
