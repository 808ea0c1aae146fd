import { useGpuStore } from '../store/gpu';

const MiB = 2 ** 20;

/** The adapter the engine got, its key limits, and the result of the kernel check run on it. */
export function GpuPanel() {
  const { status, adapter, kernelCheck, warmup, errors } = useGpuStore();
  if (status === 'pending' || !adapter) {
    return (
      <section className="panel" data-testid="gpu-pending">
        Requesting a WebGPU adapter…
      </section>
    );
  }
  const name = [adapter.vendor, adapter.architecture].filter(Boolean).join(' · ') || 'unnamed adapter';
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
        <dd>{adapter.features.includes('shader-f16') ? 'yes' : 'no'}</dd>
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
