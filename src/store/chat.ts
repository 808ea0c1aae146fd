/**
 * The chat transcript as tokens stream in. Written only by ./chat.ts (this file): the functions
 * below, called by ./worker-events.ts (the answer's start, tokens and end), the model actions (a
 * prompt asked, an import) and the runs library (a run's saved chat shown).
 */
import { create } from 'zustand';
import type { ChatToken } from '../model/generate';
import type { DisplayGroup } from '../worker/protocol';

export interface ChatState {
  tokens: ChatToken[];
  groups: DisplayGroup[];
  running: boolean;
  prompt: string;
  promptTokens: number;
  /** What answered: 'adapter on', 'frozen backbone' or 'fully fine-tuned weights'. */
  answeredBy: string;
  finishReason: string | null;
  tokensPerSecond: number;
  error: string | null;
  /** Experts switched off for the answer shown (knockout); [] for none. */
  expertMask: number[];
}

/** The chat exchange kept with a run (the last prompt and its answer). */
export interface SavedChat {
  prompt: string;
  answeredBy: string;
  tokens: ChatToken[];
  groups: DisplayGroup[];
  finishReason: string | null;
}

/** The chat store. Written only by ./chat.ts (the functions below). */
export const useChatStore = create<ChatState>(() => ({
  tokens: [],
  groups: [],
  running: false,
  prompt: '',
  promptTokens: 0,
  answeredBy: '',
  finishReason: null,
  tokensPerSecond: 0,
  error: null,
  expertMask: [],
}));

/** A prompt is asked of the worker, answered by `answeredBy`. */
export function chatAsked(prompt: string, answeredBy: string): void {
  useChatStore.setState({ running: true, error: null, prompt, answeredBy, tokens: [], finishReason: null });
}

/** The worker began the answer: the prompt's length, the groups that colour tokens, the experts switched off. */
export function chatAnswerStarted(a: { promptTokens: number; groups: DisplayGroup[]; expertMask: number[] }): void {
  useChatStore.setState({ tokens: [], groups: a.groups, expertMask: a.expertMask, promptTokens: a.promptTokens, running: true, finishReason: null, error: null });
}

export function chatTokensArrived(tokens: readonly ChatToken[]): void {
  useChatStore.setState((s) => ({ tokens: [...s.tokens, ...tokens] }));
}

/** The worker ended the answer: why, and how fast it went. */
export function chatAnswerDone(finishReason: string, tokensPerSecond: number): void {
  useChatStore.setState({ running: false, finishReason, tokensPerSecond });
}

export function chatFailed(error: string): void {
  useChatStore.setState({ error });
}

/** The prompt asked is over (answered, stopped or failed). */
export function chatEnded(): void {
  useChatStore.setState({ running: false });
}

/** The answer on screen belongs to no model loaded now (a new backbone); `prompt`: the prompt goes too (an imported adapter). */
export function chatCleared(prompt: 'keep' | 'clear'): void {
  useChatStore.setState(prompt === 'clear' ? { tokens: [], finishReason: null, prompt: '' } : { tokens: [], finishReason: null });
}

/** A run's saved chat goes on screen (null: the run kept none, and the chat empties). */
export function chatShown(chat: SavedChat | null): void {
  useChatStore.setState(
    chat
      ? { prompt: chat.prompt, answeredBy: chat.answeredBy, tokens: chat.tokens, groups: chat.groups, finishReason: chat.finishReason, running: false, error: null, promptTokens: 0, tokensPerSecond: 0 }
      : { prompt: '', answeredBy: '', tokens: [], groups: [], finishReason: null, running: false, error: null, promptTokens: 0, tokensPerSecond: 0 },
  );
}
