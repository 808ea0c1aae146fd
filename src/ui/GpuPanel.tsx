import { isSoftwareAdapter, type KernelReport } from '../engine/autotune';
import { MATMUL_SHAPE_CLASSES } from '../engine/kernel-choices';
import { resolvePrecision } from '../model/tensor-plan';
import { useGpuStore } from '../store/gpu';
import { useModelStore } from '../store/model';
import { useSettingsStore } from '../store/settings';

const MiB = 2 ** 20;

/** The adapter the engine got, its key limits, and the result of the kernel check run on it. */
export function GpuPanel() {
  const { status, adapter, kernelCheck, warmup, kernels, errors } = useGpuStore();
  const weightSetting = useSettingsStore((st) => st.values.weights);
  const onGpu = useModelStore((st) => st.memory?.precision ?? null);
  if (status === 'pending' || !adapter) {
    return (
      <section className="panel" data-testid="gpu-pending">
        Requesting a WebGPU adapter…
      </section>
    );
  }
  const name = [adapter.vendor, adapter.architecture].filter(Boolean).join(' · ') || 'unnamed adapter';
  const software = isSoftwareAdapter(adapter);
  // What the setting gives on this adapter; the weights on the GPU (onGpu) may differ while a run
  // keeps its own, or under full fine-tuning.
  const precision = resolvePrecision(weightSetting, software);
  return (
    <section className="panel" data-testid="gpu-panel">
      <h2>GPU</h2>
      <dl className="facts">
        <dt>Adapter</dt>
        <dd data-testid="adapter-name">{name}</dd>
        {adapter.description && (
          <>
            <dt>Description</dt>
            <dd>{adapter.description}</dd>
          </>
        )}
        <dt>Largest storage buffer</dt>
        <dd>{(adapter.limits.maxStorageBufferBindingSize / MiB).toFixed(0)} MiB</dd>
        <dt>Largest buffer</dt>
        <dd>{(adapter.limits.maxBufferSize / MiB).toFixed(0)} MiB</dd>
        <dt>Workgroup memory</dt>
        <dd>{(adapter.limits.maxComputeWorkgroupStorageSize / 1024).toFixed(0)} KiB</dd>
        <dt>Invocations per workgroup</dt>
        <dd>{adapter.limits.maxComputeInvocationsPerWorkgroup}</dd>
        <dt>Half precision (shader-f16)</dt>
        <dd>{adapter.features.includes('shader-f16') ? 'yes' : 'no'} (not needed: f16 weights are widened to f32 in the kernels)</dd>
        <dt>Backbone weights</dt>
        <dd data-testid="weights-precision" data-precision={onGpu ?? precision}>
          {onGpu ?? precision}
          {weightSetting === 'auto' ? ` (auto: ${software ? 'a software adapter keeps f32' : 'f16 on a hardware GPU'})` : ' (set in the training settings)'}
          {onGpu && onGpu !== precision && `; the setting gives ${precision} from the next run (a run keeps the weights it trained on; full fine-tuning and comparisons use f32)`}
        </dd>
      </dl>
      <h3>Kernel check</h3>
      {kernelCheck ? (
        <p data-testid="kernel-check" data-passed={String(kernelCheck.passed)}>
          {kernelCheck.passed ? '✓' : '✗'} {kernelCheck.kernel}, {kernelCheck.shape}: max error{' '}
          {kernelCheck.maxAbsError.toExponential(2)} against the CPU reference (tolerance {kernelCheck.tolerance.toExponential(2)}
          ), {kernelCheck.millis.toFixed(0)} ms
        </p>
      ) : (
        <p data-testid="kernel-check-pending">Running a matmul on the GPU and comparing it with the CPU reference…</p>
      )}
      {warmup && (
        <p className="small muted" data-testid="warmup" data-pipelines={warmup.pipelines}>
          {warmup.pipelines > 0
            ? `Kernels for these settings compiled ahead of Train: ${warmup.pipelines} pipelines in ${(warmup.ms / 1000).toFixed(1)} s.`
            : 'Kernels for these settings are compiled.'}
        </p>
      )}
      {kernels && <MatmulKernels report={kernels} />}
      {errors.length > 0 && (
        <ul className="errors" data-testid="errors">
          {errors.map((e, i) => (
            <li key={i}>{e}</li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** Where the matmul kernels came from, in words. */
function kernelSource(r: KernelReport): string {
  const t = r.tuning;
  const pending = t && t.pending.length > 0 ? ` ${t.pending.length} shape classes are still to be timed on the next loads (they use the fixed kernel until then).` : '';
  switch (r.source) {
    case 'forced':
      return `Forced by the page address (?matmul=${r.force}): every matmul uses ${r.force}.`;
    case 'failed':
      return `Timing the kernels failed (${r.error ?? 'unknown error'}): every matmul uses the fixed kernel.`;
    case 'cached':
      return `Chosen by timing on this adapter earlier (kept in the browser).${pending}`;
    case 'software':
      return 'A software adapter (the GPU emulated on the CPU): every matmul uses the fixed register-tiled kernel, untimed; the workgroup-memory kernels were measured 2 to 27 times slower there.';
    case 'tuned':
      return `Timed on this adapter for this backbone (${((t?.ms ?? 0) / 1000).toFixed(1)} s so far, ${t?.timer === 'timestamp' ? 'GPU timestamps' : 'wall time'}).${pending}`;
  }
}

/**
 * The matmul kernel per shape class (layout: nt forward, nn input gradient, tn weight gradient;
 * size: wide, thin, row) with the times the autotuner measured. "fixed" is the register-tiled kernel.
 */
function MatmulKernels({ report }: { report: KernelReport }) {
  const classes = report.tuning ? MATMUL_SHAPE_CLASSES.filter((c) => report.tuning?.classes[c]) : [];
  return (
    <div data-testid="kernel-choices" data-source={report.source}>
      <h3>Matmul kernels</h3>
      <p className="small muted">{kernelSource(report)}</p>
      {classes.length > 0 && (
        <table className="data-table compact-table" data-testid="kernel-choices-table">
          <caption className="small muted">Kernel per shape class, and the time of one product per candidate tried</caption>
          <thead>
            <tr>
              <th scope="col">class</th>
              <th scope="col">kernel</th>
              <th scope="col">timed (ms)</th>
            </tr>
          </thead>
          <tbody>
            {classes.map((c) => {
              const t = report.tuning?.classes[c];
              if (!t) return null;
              return (
                <tr key={c}>
                  <td>
                    {c} <span className="muted">({t.shape})</span>
                  </td>
                  <td data-testid={`kernel-${c}`}>{t.choice}</td>
                  <td className="small">
                    {Object.entries(t.ms)
                      .map(([k, v]) => `${k} ${v.toFixed(3)}`)
                      .join(', ')}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
