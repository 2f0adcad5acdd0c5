import type { Priority } from '../api/types';
import { cx } from '../utils/classNames';

const LABELS: Record<Priority, string> = {
  urgent: 'Urgent',
  high: 'High',
  medium: 'Medium',
  low: 'Low',
};

export function PriorityBadge({ priority }: { priority: Priority }) {
  return (
    <span
      className={cx('badge', `badge--${priority}`)}
      title={`Priority: ${LABELS[priority]}`}
      data-testid="priority-badge"
    >
      {LABELS[priority]}
    </span>
  );
}
