/** The chat transcript as tokens stream in. Written only by the worker client. */
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
