/// <reference lib="webworker" />
/**
 * The engine worker: owns the GPU device and all model and training state (./session.ts), so that
 * kernels, training and readbacks never block the page. It answers the commands of ./protocol.ts.
 * A lost device is replaced and the session moved onto the new one (./recovery.ts).
 */
import { requestGpu, WebGpuUnavailableError, type GpuContext } from '../engine/gpu';
import { matmulSelfCheck } from '../engine/selfcheck';
import type { ModelConfig } from '../model/config';
import { forceMatmul, tuneForBackbone } from './kernel-tuning';
import type { WorkerCommand, WorkerEvent } from './protocol';
import { superviseDevice } from './recovery';
import { Session } from './session';
import { errorMessage } from '../util/errors';

declare const self: DedicatedWorkerGlobalScope;

let ctx: GpuContext | null = null;
let session: Session | null = null;
/** The configuration of the backbone the session loaded last (from its backboneLoaded event). */
let loadedConfig: ModelConfig | null = null;
/** Settles when the kernel choices for the loaded backbone are made: warm-ups and runs wait for it. */
let kernelsChosen: Promise<void> = Promise.resolve();

function post(ev: WorkerEvent, transfer: Transferable[] = []): void {
  if (ev.type === 'backboneLoaded') loadedConfig = ev.info.config;
  self.postMessage(ev, transfer);
}

/**
 * The matmul kernels for the backbone just loaded (./kernel-tuning.ts): the stored tuning of this
 * adapter, or a tuning of about 2 s on its first use, before the load is answered, so the kernels
 * compiled ahead of Train are the ones the run will use.
 */
async function chooseKernels(): Promise<void> {
  if (!ctx || !loadedConfig) return;
  post({ type: 'kernelChoices', report: await tuneForBackbone(ctx, loadedConfig) });
}

function need(): Session {
  if (!session) throw new Error('the GPU is not initialised yet');
  return session;
}

/** Runs a command that carries a reqId and answers it with one `reply`. */
async function answer(reqId: number, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
    post({ type: 'reply', reqId, ok: true });
  } catch (e) {
    post({ type: 'reply', reqId, ok: false, error: errorMessage(e) });
  }
}

async function handle(cmd: WorkerCommand): Promise<void> {
  switch (cmd.type) {
    case 'init': {
      try {
        ctx = await requestGpu(navigator.gpu);
        try {
          forceMatmul(ctx, cmd.matmul);
        } catch (e) {
          post({ type: 'error', message: `?matmul: ${errorMessage(e)}` });
        }
        session = new Session(ctx, post, { testHooks: cmd.testHooks === true });
        session.model.weightSetting = cmd.weights ?? 'auto';
        // superviseDevice reports its own failures through the session; anything else is still told.
        superviseDevice(ctx, session, {
          acquire: () => requestGpu(navigator.gpu),
          onContext: (next) => {
            // The replacement is the same adapter: its kernel choices carry over.
            next.kernels ??= ctx?.kernels;
            ctx = next;
          },
        }).catch((e: unknown) => post({ type: 'error', message: `Replacing the lost GPU device failed: ${errorMessage(e)}` }));
        post({ type: 'ready', adapter: ctx.adapter });
      } catch (e) {
        post({ type: 'unavailable', reason: e instanceof WebGpuUnavailableError ? e.message : String(e) });
      }
      return;
    }
    case 'setWeights': {
      need()
        .setWeightSetting(cmd.setting)
        .catch((e: unknown) => post({ type: 'error', message: `Storing the backbone weights as ${cmd.setting} failed: ${errorMessage(e)}` }));
      return;
    }
    case 'kernelCheck': {
      if (!ctx) {
        post({ type: 'error', message: 'kernel check requested before the GPU was initialised' });
        return;
      }
      post({ type: 'kernelCheck', result: await matmulSelfCheck(ctx) });
      return;
    }
    case 'loadBackbone':
      return answer(cmd.reqId, async () => {
        await need().loadBackbone(cmd.source);
        // The page asks for a warm-up as soon as it hears backboneLoaded: that waits for this.
        kernelsChosen = chooseKernels();
        await kernelsChosen;
      });
    case 'loadDataset':
      return answer(cmd.reqId, () => need().loadDataset(cmd.role, cmd.name, cmd.bytes));
    case 'summarizeDataset':
      need().summarize(cmd.maxLength);
      return;
    case 'startRun':
      return answer(cmd.reqId, async () => {
        await kernelsChosen;
        await need().startRun(cmd.spec, cmd.continueAdapter);
      });
    case 'pauseRun':
      need().pause();
      return;
    case 'resumeRun':
      need().resume();
      return;
    case 'stopRun':
      need().stop();
      return;
    case 'restoreRun':
      return answer(cmd.reqId, () => need().restoreRun(cmd.runId));
    case 'runProbe':
      return answer(cmd.reqId, () => need().probe(cmd.which, cmd.expertMask ?? []));
    case 'generate':
      return answer(cmd.reqId, () => need().generate(cmd.reqId, cmd.prompt, cmd.useAdapter, cmd.sampling, cmd.expertMask ?? []));
    case 'stopGenerate':
      need().stopGenerate();
      return;
    case 'warmUp':
      return answer(cmd.reqId, async () => {
        await kernelsChosen;
        const r = await need().warmUp(cmd.spec);
        if (r) post({ type: 'pipelinesReady', pipelines: r.pipelines, ms: r.ms });
      });
    case 'exportAdapter':
      return answer(cmd.reqId, () => need().exportAdapter());
    case 'exportOfficial':
      return answer(cmd.reqId, () => need().exportOfficial(cmd.spec));
    case 'importAdapter':
      return answer(cmd.reqId, () => need().importAdapter(cmd.name, cmd.files));
    case 'debug':
      await need().debug(cmd.action);
      return;
    default: {
      const never: never = cmd;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
}

self.onmessage = (e: MessageEvent<WorkerCommand>) => {
  handle(e.data).catch((err: unknown) => post({ type: 'error', message: errorMessage(err) }));
};
