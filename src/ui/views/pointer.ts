import { useState } from 'react';

/**
 * Whether the pointer is over a chart or the keyboard is in it, and the handlers that track both.
 * recharts keeps its last tooltip on screen after the pointer leaves (and after a touch); a chart
 * passes `active={inside ? undefined : false}` to its Tooltip, so the tooltip goes with the pointer
 * and still follows the arrow keys while the chart has focus.
 */
export function usePointerInside(): {
  inside: boolean;
  handlers: { onPointerEnter(): void; onPointerLeave(): void; onFocus(): void; onBlur(): void };
} {
  const [pointer, setPointer] = useState(false);
  const [focus, setFocus] = useState(false);
  return {
    inside: pointer || focus,
    handlers: { onPointerEnter: () => setPointer(true), onPointerLeave: () => setPointer(false), onFocus: () => setFocus(true), onBlur: () => setFocus(false) },
  };
}
