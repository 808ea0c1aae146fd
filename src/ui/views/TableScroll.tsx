import type { ReactNode } from 'react';
import './views.css';

/**
 * A box that scrolls its table (both ways), reachable with the keyboard: it is a named region in the
 * tab order, so its content can be scrolled with the arrow keys.
 */
export function TableScroll({ label, className, children }: { label: string; className?: string; children: ReactNode }) {
  return (
    <div className={className ? `table-scroll ${className}` : 'table-scroll'} role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}
