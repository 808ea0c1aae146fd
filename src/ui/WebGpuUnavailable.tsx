import { useGpuStore } from '../store/gpu';

/** Shown when the browser offers no WebGPU adapter: what happened and how to get one. */
export function WebGpuUnavailable() {
  const reason = useGpuStore((s) => s.unavailableReason);
  return (
    <section className="panel unavailable" data-testid="webgpu-unavailable">
      <h2>WebGPU is not available in this browser</h2>
      <p>
        The playground trains and runs models with WebGPU compute shaders on your own GPU, so it needs a browser that
        exposes WebGPU.
      </p>
      <p className="reason">Reason: {reason}</p>
      <ul>
        <li>Chrome or Edge 113 or newer on Windows, macOS and ChromeOS (on by default); Chrome 121+ on Android.</li>
        <li>
          Chrome or Chromium on Linux: enable <code>chrome://flags/#enable-unsafe-webgpu</code> (or start it with{' '}
          <code>--enable-unsafe-webgpu</code>) and make sure a Vulkan driver is installed.
        </li>
        <li>Safari 26 or newer on macOS and iOS; Firefox 141 or newer on Windows.</li>
        <li>If your browser supports WebGPU but found no adapter, check that hardware acceleration is enabled.</li>
      </ul>
    </section>
  );
}
