/**
 * A lost device whose replacement fails: no device can be had, or the session cannot be moved onto
 * the new one. Either way the user is told (the run's status and a run event, with the reason) and
 * the supervising promise does not reject unheard. No GPU: the devices are stand-ins.
 */
import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../engine/gpu';
import type { WorkerEvent } from './protocol';
import { superviseDevice, type SupervisedSession } from './recovery';
import { Session } from './session';

/** A context whose device is lost at once (or never). */
const lostContext = (message = 'the GPU process crashed'): GpuContext => ({ device: { lost: Promise.resolve({ reason: 'unknown', message }) } }) as unknown as GpuContext;
const liveContext = (): GpuContext => ({ device: { lost: new Promise(() => {}) } }) as unknown as GpuContext;

function fakeSession(ctx: GpuContext, replace: () => Promise<void>) {
  const calls: string[] = [];
  const session: SupervisedSession = {
    gpu: ctx,
    deviceLost: () => (calls.push('lost'), 7),
    deviceUnavailable: (reason, error) => void calls.push(`unavailable: ${reason} / ${error}`),
    replaceDevice: () => (calls.push('replace'), replace()),
    deviceReplacementFailed: (reason, error, step) => void calls.push(`replacementFailed at ${step}: ${reason} / ${error}`),
  };
  return { session, calls };
}

describe('superviseDevice', () => {
  it('reports a session that cannot be moved onto the new device, with the reason', async () => {
    const ctx = lostContext();
    const { session, calls } = fakeSession(ctx, () => Promise.reject(new Error('uploading the backbone failed: out of memory')));
    await expect(superviseDevice(ctx, session, { acquire: async () => liveContext() })).resolves.toBeUndefined();
    expect(calls).toEqual(['lost', 'replace', 'replacementFailed at 7: unknown: the GPU process crashed / uploading the backbone failed: out of memory']);
  });

  it('reports a new context the worker could not take', async () => {
    const ctx = lostContext();
    const { session, calls } = fakeSession(ctx, () => Promise.resolve());
    const onContext = () => {
      throw new Error('no context');
    };
    await expect(superviseDevice(ctx, session, { acquire: async () => liveContext(), onContext })).resolves.toBeUndefined();
    expect(calls).toEqual(['lost', 'replacementFailed at 7: unknown: the GPU process crashed / no context']);
  });

  it('reports that no device could be had, with the last error', async () => {
    const ctx = lostContext();
    const { session, calls } = fakeSession(ctx, () => Promise.resolve());
    await superviseDevice(ctx, session, { tries: 1, acquire: () => Promise.reject(new Error('no adapter')) });
    expect(calls).toEqual(['lost', 'unavailable: unknown: the GPU process crashed / no adapter']);
  });
});

describe('Session.deviceReplacementFailed', () => {
  it('ends the run in an error and records a run event naming both reasons', () => {
    const events: WorkerEvent[] = [];
    const session = new Session(liveContext(), (ev) => void events.push(ev));
    session.deviceLost();
    session.deviceReplacementFailed('destroyed: device.destroy()', 'the checkpoint could not be imported', 12);
    const status = events.find((e) => e.type === 'runStatus');
    const event = events.find((e) => e.type === 'runEvent');
    expect(status).toMatchObject({ type: 'runStatus', status: 'error', step: 12 });
    expect(event).toMatchObject({ type: 'runEvent', event: { kind: 'deviceFailed', severity: 'error', step: 12 } });
    const message = status?.type === 'runStatus' ? status.message : '';
    expect(message).toContain('lost at step 12 (destroyed: device.destroy())');
    expect(message).toContain('could not be moved onto it (the checkpoint could not be imported)');
    expect(event?.type === 'runEvent' && event.event.message).toBe(message);
  });
});
