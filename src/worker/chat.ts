/**
 * Chat with the model on the GPU: a prompt is encoded, the Generator (src/model/generate.ts)
 * samples an answer one token at a time, and each token goes to the page as it comes, with the
 * router's weights per expert group when the adapter routes. The generator and its KV cache are
 * kept between prompts and made again when the weights change or a longer answer is asked for.
 */
import { encodePrompt } from '../data/template';
import { isRouted } from '../method/adapter';
import { type ChatToken, Generator } from '../model/generate';
import { displayGroups, tokenGroupShares } from '../run/groups';
import type { SamplingSettings } from './protocol';
import type { WorkerState } from './state';

export class Chat {
  private generator: Generator | null = null;
  private stopGeneration = false;

  constructor(private readonly s: WorkerState) {}

  /** `expertMask`: experts switched off in every adapted layer (knockout), with the adapter on. */
  async generate(reqId: number, prompt: string, useAdapter: boolean, sampling: SamplingSettings, expertMask: readonly number[] = []): Promise<void> {
    const s = this.s;
    const b = s.requireBackbone();
    if (prompt.trim() === '') throw new Error('type a prompt first');
    const tok = b.tokenizer;
    const ids = encodePrompt(tok, prompt);
    const want = Math.min(s.maxPositions, ids.length + sampling.maxNewTokens);
    if (ids.length >= s.maxPositions) throw new Error(`the prompt has ${ids.length} tokens; this backbone holds ${s.maxPositions}`);
    this.stopGeneration = false;
    await s.serial(async () => {
      const weights = s.model.weights;
      if (!weights) throw new Error('no model on the GPU');
      if (!this.generator || this.generator.weights !== weights || this.generator.capacity < want) {
        this.generator?.destroy();
        this.generator = new Generator(s.ctx, weights, { maxLength: Math.min(s.maxPositions, Math.max(want, 64)) });
      }
      const gen = this.generator;
      const routed = useAdapter && isRouted(weights.adapterCfg);
      if (expertMask.length > 0 && !routed) throw new Error('switching experts off needs a LoRAMoE adapter, and the adapter on');
      const groups = routed ? (s.model.adapter.groups.length > 0 ? s.model.adapter.groups : displayGroups(weights.adapterCfg, [])) : [];
      s.post({ type: 'chatStart', reqId, promptTokens: ids.length, groups, expertMask: routed ? [...expertMask] : [] });
      const out: number[] = [];
      let prevText = '';
      const res = await gen.generate(
        ids,
        {
          temperature: sampling.temperature,
          topK: sampling.topK,
          topP: sampling.topP,
          maxNewTokens: Math.min(sampling.maxNewTokens, gen.capacity - ids.length),
          seed: sampling.seed,
          stopIds: [tok.eosId],
          useAdapter,
          returnRouting: routed,
          expertMask: routed ? expertMask : [],
        },
        (t) => {
          let piece: string;
          if (t.id === tok.eosId) {
            // The end of sequence is sent too (marked special: the transcript leaves it out of the text).
            piece = tok.decode([t.id], false) || '</s>';
          } else {
            out.push(t.id);
            // Incremental decoding: the text this token adds to the whole answer (keeps BPE spaces).
            const text = tok.decode(out);
            piece = text.startsWith(prevText) ? text.slice(prevText.length) : tok.decode([t.id]);
            prevText = text;
          }
          const token: ChatToken = t.id === tok.eosId ? { id: t.id, text: piece, special: true } : { id: t.id, text: piece };
          if (t.routing) {
            token.groupShares = tokenGroupShares(t.routing, groups);
            token.perLayer = Object.fromEntries([...t.routing].map(([k, v]) => [k, Array.from(v)]));
          }
          s.post({ type: 'chatTokens', reqId, tokens: [token] });
          return !this.stopGeneration;
        },
      );
      const n = res.tokens.length;
      s.post({ type: 'chatDone', reqId, finishReason: res.finishReason, tokensPerSecond: n > 1 && res.decodeMs > 0 ? ((n - 1) * 1000) / res.decodeMs : 0 });
    });
  }

  /** The answer being generated ends after its current token. */
  stop(): void {
    this.stopGeneration = true;
  }

  /** Frees the generator (the weights it reads are about to go, or went with a lost device). */
  drop(): void {
    this.generator?.destroy();
    this.generator = null;
  }
}
