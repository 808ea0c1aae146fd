import type { ExpertGroup } from './types';
import './views.css';

/** The expert groups with their colours and experts (used by the heatmap and the chat). */
export function GroupLegend({ groups }: { groups: ExpertGroup[] }) {
  return (
    <ul className="group-legend" data-testid="group-legend">
      {groups.map((g, i) => (
        <li key={i} data-testid={`group-legend-${i}`}>
          <span className="swatch" style={{ background: g.color }} />
          {g.name} <span className="muted">(experts {g.experts.join(', ')})</span>
        </li>
      ))}
    </ul>
  );
}
