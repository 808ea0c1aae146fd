import { useMemo } from 'react';
import { isSoftwareAdapter } from '../engine/autotune';
import { ATTENTION_MAX_KEYS } from '../engine/kernels/attention';
import type { ModelConfig } from '../model/config';
import { parameterCount } from '../model/config';
import { resolvePrecision, usablePrecision } from '../model/tensor-plan';
import { useDatasetStore } from '../store/dataset';
import { useGpuStore } from '../store/gpu';
import { estimateMemory, formatBytes, formatCount, type MemoryCategory } from '../store/memory';
import { useModelStore } from '../store/model';
import { useSettingsStore } from '../store/settings';

const CATEGORIES: { key: MemoryCategory; label: string }[] = [
  { key: 'weights', label: 'Backbone weights' },
  { key: 'adapter', label: 'Adapter' },
  { key: 'activations', label: 'Activations' },
  { key: 'gradients', label: 'Gradients' },
  { key: 'optimizer', label: 'Optimizer state' },
  { key: 'other', label: 'Other' },
];

/** Full fine-tuning is offered for small backbones only; above this it warns. */
export const FULL_FINETUNE_WARN_PARAMS = 200e6;

/**
 * Parameter count, the GPU memory the chosen settings need (by category), whether every tensor fits
 * the adapter's buffer limits, and, once loaded, the bytes the worker actually allocated.
 */
export function MemoryEstimate({ config }: { config: ModelConfig }) {
  const s = useSettingsStore((st) => st.values);
  const gpu = useGpuStore((st) => st.adapter);
  const limits = gpu?.limits;
  // The worker's own rule (Session.precisionFor): the setting on this adapter, f32 for full fine-tuning.
  const precision = usablePrecision({ mode: s.mode }, resolvePrecision(s.weights, gpu ? isSoftwareAdapter(gpu) : false));
  const longest = useDatasetStore((st) => st.summary?.length.max ?? null);
  const measured = useModelStore((st) => st.memory);
  const loaded = useModelStore((st) => st.info !== null);
  const maxPositions = Math.min(config.maxPositionEmbeddings, ATTENTION_MAX_KEYS);
  const seqLen = Math.max(2, Math.min(s.maxLength, maxPositions, longest ?? Infinity));
  const est = useMemo(
    () =>
      estimateMemory(
        {
          config,
          adapter: { mode: s.mode, numExperts: s.mode === 'loramoe' ? s.experts : 1, rank: s.rank, targets: s.targets, lbcBeta: s.lbcBeta },
          batchSize: s.batch,
          seqLen,
          maxPositions,
          training: true,
          precision,
        },
        limits,
      ),
    [config, s.mode, s.experts, s.rank, s.targets, s.lbcBeta, s.batch, seqLen, maxPositions, limits, precision],
  );
  const params = parameterCount(config);
  const measuredTotal = measured ? measured.weights + measured.graph + measured.optimizer : 0;
  return (
    <div className="memory" data-testid="memory-estimate">
      <dl className="facts compact">
        <dt>Parameters</dt>
        <dd data-testid="param-count" data-value={params}>
          {formatCount(params)} ({params.toLocaleString()})
        </dd>
        <dt>Shape</dt>
        <dd>
          {config.numLayers} layers · hidden {config.hiddenSize} · FFN {config.intermediateSize} · {config.numHeads}/{config.numKvHeads} heads · vocab{' '}
          {config.vocabSize.toLocaleString()}
        </dd>
        <dt>Trainable ({s.mode})</dt>
        <dd data-testid="trainable-count">{formatCount(est.trainableParams)}</dd>
      </dl>
      <table className="mem-table">
        <caption>
          GPU memory for training: batch {s.batch} × {seqLen} tokens{longest === null ? ' (maximum length; the longest sample is not known yet)' : ''}
        </caption>
        <tbody>
          {CATEGORIES.filter((c) => est.bytes[c.key] > 0).map((c) => (
            <tr key={c.key}>
              <th scope="row">{c.key === 'weights' ? `${c.label} (${precision === 'f16' ? 'f16 matrices' : 'float32'})` : c.label}</th>
              <td className="num" data-testid={`mem-${c.key}`}>
                {formatBytes(est.bytes[c.key])}
              </td>
            </tr>
          ))}
          <tr className="total">
            <th scope="row">Estimated total</th>
            <td className="num" data-testid="mem-total" data-value={est.total}>
              {formatBytes(est.total)}
            </td>
          </tr>
          {loaded && measured && (
            <tr>
              <th scope="row">Allocated now{measured.graph === 0 ? ' (weights only; the graph is built when a run starts)' : ''}</th>
              <td className="num" data-testid="mem-measured" data-value={measuredTotal}>
                {formatBytes(measuredTotal)}
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {limits &&
        (est.tooLarge.length === 0 ? (
          <p className="ok" data-testid="fits" data-fits="true">
            ✓ Every tensor fits this GPU's limits (largest: {est.largest[0]?.name} [{est.largest[0]?.shape.join(' × ')}], {formatBytes(est.largest[0]?.bytes ?? 0)}; a buffer may
            hold {formatBytes(limits.maxStorageBufferBindingSize)}).
          </p>
        ) : (
          <div className="warn" data-testid="fits" data-fits="false">
            ✗ Does not fit this GPU:
            <ul>
              {est.tooLarge.slice(0, 4).map((t) => (
                <li key={t.tensor}>
                  {t.tensor} [{t.shape.join(' × ')}] needs {formatBytes(t.bytes)}, over {t.limitName} ({formatBytes(t.limit)})
                </li>
              ))}
            </ul>
            Lower the batch size or the maximum length (the logits are batch × length × vocabulary).
          </div>
        ))}
      {s.mode === 'full' && params > FULL_FINETUNE_WARN_PARAMS && (
        <p className="warn" data-testid="full-warning">
          Full fine-tuning of a {formatCount(params)}-parameter backbone keeps three copies of every weight (gradients and two optimizer moments): it is meant for
          small backbones (under {formatCount(FULL_FINETUNE_WARN_PARAMS)}).
        </p>
      )}
    </div>
  );
}
