import { useState, type KeyboardEvent } from 'react';
import { GroupLegend } from './GroupLegend';
import { TableScroll } from './TableScroll';
import type { ChatToken, ExpertGroup } from './types';
import './views.css';

export interface ChatTranscriptProps {
  tokens: ChatToken[];
  groups: ExpertGroup[];
}

/** Share of each group in one router weight vector (sum over the group's experts). */
function sharesOf(weights: readonly number[], groups: readonly ExpertGroup[]): number[] {
  return groups.map((g) => g.experts.reduce((s, e) => s + (weights[e] ?? 0), 0));
}

/** The token's group shares: as given, else averaged over its per-layer weights, else none. */
function tokenShares(token: ChatToken, groups: readonly ExpertGroup[]): number[] | undefined {
  if (token.groupShares && token.groupShares.length > 0) return token.groupShares;
  const rows = Object.values(token.perLayer ?? {});
  if (rows.length === 0 || groups.length === 0) return undefined;
  const sum = new Array<number>(groups.length).fill(0);
  for (const w of rows) sharesOf(w, groups).forEach((s, g) => (sum[g] += s));
  return sum.map((s) => s / rows.length);
}

interface Dominant {
  group: number;
  share: number;
  /** 0 for an even split between groups, 1 when one group holds all the weight. */
  strength: number;
}

function dominant(shares: readonly number[] | undefined): Dominant | null {
  if (!shares || shares.length === 0) return null;
  let g = 0;
  for (let i = 1; i < shares.length; i++) if (shares[i] > shares[g]) g = i;
  const share = shares[g];
  if (!Number.isFinite(share)) return null;
  const even = 1 / shares.length;
  const strength = shares.length > 1 ? Math.min(1, Math.max(0, (share - even) / (1 - even))) : 1;
  return { group: g, share, strength };
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${Math.round(v * 100)}%` : '—';
}

/** Background tint of a group colour: faint for an even split, strong for a clear preference. */
function tint(color: string, strength: number): string {
  return `color-mix(in srgb, ${color} ${Math.round(14 + 60 * strength)}%, transparent)`;
}

/**
 * Generated text, one span per token, tinted by the expert group that holds the largest share of
 * its router weight (stronger tint = clearer preference). Hover or focus a token for its routing
 * per layer and adapted projection.
 */
export function ChatTranscript({ tokens: all, groups }: ChatTranscriptProps) {
  // Special tokens (the end of sequence) are not text: the transcript shows the words only.
  const tokens = all.filter((t) => !t.special);
  const [hovered, setHovered] = useState<number | null>(null);
  const [focused, setFocused] = useState<number | null>(null);
  const current = hovered ?? focused;
  const rovingIndex = focused ?? 0;

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    if (tokens.length === 0 || focused === null) return;
    const moves: Record<string, number> = { ArrowRight: focused + 1, ArrowLeft: focused - 1, Home: 0, End: tokens.length - 1 };
    const next = moves[e.key];
    if (next === undefined) return;
    e.preventDefault();
    const clamped = Math.max(0, Math.min(tokens.length - 1, next));
    e.currentTarget.querySelector<HTMLElement>(`[data-index="${clamped}"]`)?.focus();
  };

  return (
    <section className="view chat-transcript" data-testid="chat-transcript">
      <GroupLegend groups={groups} />
      {tokens.length === 0 ? (
        <p className="view-empty">No generated text yet.</p>
      ) : (
        <div className="chat-text" role="group" aria-label="Generated text; use the arrow keys to move between tokens" onKeyDown={onKeyDown} onMouseLeave={() => setHovered(null)}>
          {tokens.map((tok, i) => {
            const d = dominant(tokenShares(tok, groups));
            const g = d ? groups[d.group] : undefined;
            return (
              <span
                key={i}
                data-index={i}
                data-testid={`chat-token-${i}`}
                data-group={d && g ? String(d.group) : 'none'}
                data-share={d ? String(d.share) : undefined}
                className={`chat-token${current === i ? ' active' : ''}${d && g ? '' : ' plain'}`}
                style={d && g ? { background: tint(g.color, d.strength) } : undefined}
                title={d && g ? `${g.name}: ${pct(d.share)}` : 'no routing'}
                tabIndex={i === rovingIndex ? 0 : -1}
                onMouseEnter={() => setHovered(i)}
                onFocus={() => setFocused(i)}
              >
                {tok.text}
              </span>
            );
          })}
        </div>
      )}
      {tokens.length > 0 && <TokenDetail token={current !== null ? tokens[current] : undefined} index={current} groups={groups} />}
    </section>
  );
}

function TokenDetail({ token, index, groups }: { token: ChatToken | undefined; index: number | null; groups: ExpertGroup[] }) {
  if (!token || index === null) {
    return (
      <p className="token-detail muted" data-testid="chat-token-detail">
        Hover or focus a token to see how each layer routed it.
      </p>
    );
  }
  const shares = tokenShares(token, groups);
  const entries = Object.entries(token.perLayer ?? {});
  const layers: number[] = [];
  const projections: string[] = [];
  const byKey = new Map<string, number[]>();
  for (const [key, w] of entries) {
    const dot = key.indexOf('.');
    const layer = Number(key.slice(0, dot));
    if (dot < 1 || !Number.isInteger(layer)) continue;
    const proj = key.slice(dot + 1);
    if (!layers.includes(layer)) layers.push(layer);
    if (!projections.includes(proj)) projections.push(proj);
    byKey.set(`${layer}.${proj}`, sharesOf(w, groups));
  }
  layers.sort((a, b) => a - b);
  return (
    <div className="token-detail" data-testid="chat-token-detail" data-index={index}>
      <div>
        token {index}: <code className="token-text">{token.text}</code> <span className="muted">id {token.id}</span>
        {shares ? (
          <span>
            {' '}
            ·{' '}
            {groups.map((g, gi) => (
              <span key={gi} className="share-chip">
                <span className="swatch" style={{ background: g.color }} /> {g.name} {pct(shares[gi] ?? NaN)}
              </span>
            ))}
          </span>
        ) : (
          <span className="muted"> · no routing (adapter off or not routed)</span>
        )}
      </div>
      {layers.length > 0 && (
        <TableScroll className="detail-scroll" label="Router weights of this token per layer and projection">
          <table className="data-table detail-table" data-testid="chat-token-layers">
            <thead>
              <tr>
                <th scope="col">layer</th>
                {projections.map((p) => (
                  <th scope="col" key={p}>
                    {p}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {layers.map((l) => (
                <tr key={l}>
                  <th scope="row">{l}</th>
                  {projections.map((p) => {
                    const s = byKey.get(`${l}.${p}`);
                    return <td key={p}>{s ? <ShareBar shares={s} groups={groups} /> : <span className="muted">—</span>}</td>;
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
    </div>
  );
}

/** Group shares as a stacked bar with the percentages written out. */
function ShareBar({ shares, groups }: { shares: number[]; groups: ExpertGroup[] }) {
  const label = groups.map((g, i) => `${g.name} ${pct(shares[i])}`).join(', ');
  return (
    <div className="share-cell" title={label}>
      <div className="share-bar" aria-hidden="true">
        {groups.map((g, i) => (
          <span key={i} style={{ width: `${Math.max(0, Math.min(1, shares[i] ?? 0)) * 100}%`, background: g.color }} />
        ))}
      </div>
      <span className="share-text">{shares.map((s) => pct(s)).join(' / ')}</span>
    </div>
  );
}
