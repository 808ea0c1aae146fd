import type { DisplayGroup } from '../worker/protocol';
import { rangeText } from '../run/groups';

export interface ExpertSwitchesProps {
  /** The adapter's expert groups (each distinct set of experts once, named by its data types). */
  groups: readonly DisplayGroup[];
  /** Experts switched off now (sorted). */
  off: readonly number[];
  onChange: (off: number[]) => void;
  /** data-testid prefix: `${testid}-group-${i}` per switch. */
  testid: string;
  disabled?: boolean;
}

/**
 * Expert knockout: one switch per expert group. A group switched off has its experts' router
 * logits set to minus infinity in every adapted layer, so the other groups' weights renormalise.
 * The last group on cannot be switched off (the router would have no expert left).
 */
export function ExpertSwitches({ groups, off, onChange, testid, disabled }: ExpertSwitchesProps) {
  if (groups.length === 0) return null;
  const offSet = new Set(off);
  const isOn = (g: DisplayGroup) => !g.experts.every((e) => offSet.has(e));
  const onCount = groups.filter(isOn).length;
  const toggle = (g: DisplayGroup, on: boolean) => {
    const next = new Set(off);
    for (const e of g.experts) {
      if (on) next.delete(e);
      else next.add(e);
    }
    onChange([...next].sort((a, b) => a - b));
  };
  return (
    <div className="checks expert-switches" data-testid={`${testid}-switches`} role="group" aria-label="Expert groups (switch a group off to knock its experts out)">
      <span className="muted">Expert groups:</span>
      {groups.map((g, i) => {
        const on = isOn(g);
        return (
          <label key={g.experts.join(',')} className="check" title={on && onCount === 1 ? 'At least one group must stay on' : `Experts ${rangeText(g.experts)}`}>
            <input type="checkbox" data-testid={`${testid}-group-${i}`} checked={on} disabled={disabled || (on && onCount === 1)} onChange={(e) => toggle(g, e.target.checked)} />
            {g.name} ({rangeText(g.experts)})
          </label>
        );
      })}
    </div>
  );
}

/** The experts of `off` that exist in `groups` (a mask kept from an earlier adapter may name others). */
export function effectiveMask(groups: readonly DisplayGroup[], off: readonly number[]): number[] {
  const experts = new Set(groups.flatMap((g) => g.experts));
  return off.filter((e) => experts.has(e));
}
