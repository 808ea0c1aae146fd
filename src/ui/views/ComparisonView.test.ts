/** The comparison's table as CSV. */
import { describe, expect, it } from 'vitest';
import { type ComparisonMethodView, comparisonCsv, seedCurve, seedDifferences } from './ComparisonView';

const method = (key: string, name: string, step: number, patch: Partial<ComparisonMethodView> = {}): ComparisonMethodView => ({
  key,
  name,
  runId: `run-${key}`,
  state: 'done',
  curve: [],
  step,
  finalLoss: null,
  ownGroup: null,
  ...patch,
});

describe('comparisonCsv', () => {
  it('writes the table as CSV, quoting names with commas, leaving what a method lacks empty', () => {
    const p0 = { step: 0, samples: 0, probe: 0.9, probeLogLikelihood: -1.5, tasks: { opposites: 0.1, sentiment: 0.5 }, taskMean: 0.3 };
    const p1 = { step: 10, samples: 160, probe: 0.85, probeLogLikelihood: -1.25, tasks: { opposites: 0.8, sentiment: 1 }, taskMean: 0.9 };
    const csv = comparisonCsv([
      method('full', 'full fine-tuning', 10, { curve: [p0, p1], finalLoss: 0.5 }),
      method('loramoe', 'LoRAMoE, no LBC', 10, { curve: [p0, p1], finalLoss: 0.25, ownGroup: [{ type: 'world knowledge', share: 0.5123, target: null }] }),
    ]);
    expect(csv.split('\n')).toEqual([
      'method,run,steps,probe before,probe after,probe log-likelihood after,task: opposites,task: sentiment,task mean,final loss,own-group share: world knowledge',
      'full fine-tuning,run-full,10,0.9000,0.8500,-1.2500,0.8000,1.0000,0.9000,0.5000,',
      '"LoRAMoE, no LBC",run-loramoe,10,0.9000,0.8500,-1.2500,0.8000,1.0000,0.9000,0.2500,0.5123',
      '',
    ]);
  });

  it('adds probe and task mean with each expert group off for the LoRAMoE methods', () => {
    const p0 = { step: 0, samples: 0, probe: 0.9, probeLogLikelihood: -1.5, tasks: { sentiment: 0.5 }, taskMean: 0.5 };
    const knockout = [
      { group: 'world knowledge', experts: [0, 1], probe: 0.25, taskMean: 0.75 },
      { group: 'downstream tasks', experts: [2, 3], probe: 0.875, taskMean: 0.125 },
    ];
    const csv = comparisonCsv([
      method('lora', 'LoRA', 10, { curve: [p0, { ...p0, step: 10 }], finalLoss: 0.5 }),
      method('loramoe', 'MoE', 10, { curve: [p0, { ...p0, step: 10, knockout }], finalLoss: 0.25 }),
    ]);
    expect(csv.split('\n')).toEqual([
      'method,run,steps,probe before,probe after,probe log-likelihood after,task: sentiment,task mean,final loss,"probe, world knowledge off","task mean, world knowledge off","probe, downstream tasks off","task mean, downstream tasks off"',
      'LoRA,run-lora,10,0.9000,0.9000,-1.5000,0.5000,0.5000,0.5000,,,,',
      'MoE,run-loramoe,10,0.9000,0.9000,-1.5000,0.5000,0.5000,0.2500,0.2500,0.7500,0.8750,0.1250',
      '',
    ]);
  });

  it('with two seeds: the mean of the runs and the 95% half-width t(0.975, 1) * sd / sqrt(2) = 12.7062 * |a - b| / 2', () => {
    const at = (probe: number, taskMean: number) => [
      { step: 0, samples: 0, probe: 0.9, probeLogLikelihood: -1, tasks: { sentiment: 0.5 }, taskMean: 0.5 },
      { step: 10, samples: 40, probe, probeLogLikelihood: -2, tasks: { sentiment: taskMean }, taskMean },
    ];
    const m = method('lora', 'LoRA', 20, {
      curve: at(0.7, 0.75),
      finalLoss: 0.5,
      seedRuns: [
        { seed: 1, curve: at(0.5, 0.5), ownGroup: null },
        { seed: 2, curve: at(0.7, 0.75), ownGroup: null },
      ],
    });
    const { runs, points } = seedCurve(m);
    expect(runs).toBe(2);
    expect(points[1].probe.mean).toBeCloseTo(0.6, 12);
    expect(points[1].probe.half).toBeCloseTo((12.7062 * 0.2) / 2, 4);
    expect(points[0].probe.half).toBe(0);
    const csv = comparisonCsv([m]).split('\n');
    expect(csv[0].endsWith(',seeds,probe after ±95%,task mean ±95%')).toBe(true);
    expect(csv[1]).toBe(`LoRA,run-lora,20,0.9000,0.6000,-2.0000,0.6250,0.6250,0.5000,2,${((12.7062 * 0.2) / 2).toFixed(4)},${((12.7062 * 0.25) / 2).toFixed(4)}`);
    // While a method trains, its live run is shown alone.
    expect(seedCurve({ ...m, state: 'running' }).runs).toBe(1);
  });

  it('pairs methods by seed: differences beyond noise where the 95% interval excludes 0', () => {
    const end = (probe: number, taskMean: number) => [{ step: 10, samples: 40, probe, probeLogLikelihood: -1, tasks: {}, taskMean }];
    const runsOf = (values: [number, number][]) => values.map(([p, t], i) => ({ seed: 5 + i, curve: end(p, t), ownGroup: null }));
    const a = method('full', 'A', 20, { seedRuns: runsOf([[0.5, 0.9], [0.52, 0.6], [0.48, 0.75]]) });
    const b = method('lora', 'B', 20, { seedRuns: runsOf([[0.9, 0.8], [0.9, 0.7], [0.9, 0.75]]) });
    const one = method('loramoe', 'C', 20, { seedRuns: runsOf([[0.9, 0.8]]) });
    const [d] = seedDifferences([a, b, one]);
    expect(seedDifferences([a, b, one])).toHaveLength(1);
    expect([d.a, d.b]).toEqual(['A', 'B']);
    // probe differences -0.4, -0.38, -0.42: mean -0.4, sd 0.02, half 4.3027 * 0.02 / sqrt(3) = 0.0497
    expect(d.probe.mean).toBeCloseTo(-0.4, 12);
    expect(d.probe.half).toBeCloseTo(0.049683, 5);
    expect(d.probe.beyondNoise).toBe(true);
    // task differences 0.1, -0.1, 0: mean 0, not beyond noise
    expect(d.taskMean.mean).toBeCloseTo(0, 12);
    expect(d.taskMean.beyondNoise).toBe(false);
  });

  it('marks a knockout whose paired change from all groups on is beyond noise', () => {
    const end = (probe: number, off: number) => [
      { step: 10, samples: 40, probe, probeLogLikelihood: -1, tasks: {}, taskMean: 0.5, knockout: [{ group: 'world knowledge', experts: [0, 1], probe: off, taskMean: 0.5 }] },
    ];
    const m = method('loramoe', 'MoE', 20, {
      seedRuns: [
        { seed: 1, curve: end(0.9, 0.2), ownGroup: null },
        { seed: 2, curve: end(0.92, 0.24), ownGroup: null },
        { seed: 3, curve: end(0.88, 0.2), ownGroup: null },
      ],
    });
    const [k] = seedCurve(m).points[0].knockout;
    // drops 0.7, 0.68, 0.68: mean 0.68667, far beyond its interval; the task mean does not move
    expect(k.probeDrop.mean).toBeCloseTo(0.686667, 5);
    expect(k.probeDrop.beyondNoise).toBe(true);
    expect(k.taskDrop.beyondNoise).toBe(false);
  });
});
