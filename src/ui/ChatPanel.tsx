import { useMemo } from 'react';
import { useChatStore } from '../store/chat';
import { useModelStore } from '../store/model';
import { useRunStore } from '../store/run';
import { setView, useViewStore } from '../store/view';
import { generate, stopGenerate } from '../store/model-actions';
import { withColors } from './colors';
import { effectiveMask, ExpertSwitches } from './ExpertSwitches';
import { count } from './format';
import { SettingField } from './SettingField';
import { rangeText } from '../run/groups';
import { ChatTranscript } from './views/ChatTranscript';
import { ErrorBox } from './ErrorBox';

/** Prompt in, tokens streamed out, each tinted by the expert group its router favoured. */
export function ChatPanel() {
  const ready = useModelStore((s) => s.info !== null);
  const adapter = useRunStore((s) => s.adapter);
  const { tokens, groups, running, finishReason, tokensPerSecond, error, answeredBy, expertMask } = useChatStore();
  const prompt = useViewStore((s) => s.chatPrompt);
  const useAdapter = useViewStore((s) => s.useAdapterInChat);
  const colored = useMemo(() => withColors(groups), [groups]);
  const hasAdapter = adapter.origin !== 'none' && adapter.cfg !== null && adapter.cfg.mode !== 'full';
  const routed = hasAdapter && adapter.cfg?.mode === 'loramoe' && useAdapter;
  const off = useViewStore((s) => s.chatExpertsOff);
  const mask = routed ? effectiveMask(adapter.groups, off) : [];
  const submit = () => {
    if (ready && !running) void generate(prompt, hasAdapter && useAdapter, mask);
  };
  return (
    <section className="panel" data-testid="chat-panel">
      <h2>Chat</h2>
      <form
        className="chat-form"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <textarea
          aria-label="Prompt"
          data-testid="chat-prompt"
          rows={2}
          value={prompt}
          placeholder="Ask something the training data covers (the demo knows capitals, reverses words, sums numbers, judges reviews)"
          onChange={(e) => setView({ chatPrompt: e.target.value })}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) {
              e.preventDefault();
              submit();
            }
          }}
        />
        <div className="chat-controls">
          <label className="check" title={hasAdapter ? '' : 'No adapter yet: the frozen backbone answers'}>
            <input type="checkbox" data-testid="chat-adapter" checked={hasAdapter && useAdapter} disabled={!hasAdapter} onChange={(e) => setView({ useAdapterInChat: e.target.checked })} />
            Adapter on
          </label>
          {running ? (
            <button type="button" data-testid="chat-stop" onClick={stopGenerate}>
              Stop
            </button>
          ) : (
            <button type="submit" className="primary" data-testid="chat-send" disabled={!ready || prompt.trim() === ''}>
              Generate
            </button>
          )}
        </div>
      </form>
      {routed && <ExpertSwitches groups={adapter.groups} off={mask} onChange={(o) => setView({ chatExpertsOff: o })} testid="chat-experts" disabled={running} />}
      <details className="group">
        <summary>Sampling</summary>
        <div className="fields">
          <SettingField k="maxNewTokens" />
          <SettingField k="temperature" />
          <SettingField k="topK" />
          <SettingField k="topP" />
        </div>
      </details>
      <ErrorBox message={error} testId="chat-error" alert={false} />
      <ChatTranscript tokens={tokens} groups={colored} />
      {(finishReason || running) && (
        <p className="small muted" data-testid="chat-status" data-finish={finishReason ?? ''} data-mask={expertMask.join(',')}>
          {running ? 'Generating…' : `Finished (${finishReason === 'stop' ? 'end of sequence' : finishReason === 'length' ? 'token limit' : finishReason})`} · {count(tokens.length, 'token')}
          {tokensPerSecond > 0 ? ` · ${tokensPerSecond.toFixed(1)} tokens/s` : ''} · {answeredBy}
          {expertMask.length > 0 ? `, experts ${rangeText(expertMask)} off` : ''}
        </p>
      )}
    </section>
  );
}
