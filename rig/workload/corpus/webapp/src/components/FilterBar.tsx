import type { Priority, TaskFilter, TaskStatus } from '../api/types';
import { countActiveFilters } from '../utils/filterTasks';
import type { SortKey } from '../utils/sortTasks';

interface FilterBarProps {
  filter: TaskFilter;
  onFilterChange: (filter: TaskFilter) => void;
  sortKey: SortKey;
  onSortChange: (key: SortKey) => void;
  assignees: string[];
}

const STATUSES: Array<TaskStatus | 'all'> = ['all', 'todo', 'in_progress', 'done'];
const PRIORITIES: Array<Priority | 'all'> = ['all', 'urgent', 'high', 'medium', 'low'];

export function FilterBar({ filter, onFilterChange, sortKey, onSortChange, assignees }: FilterBarProps) {
  const active = countActiveFilters(filter);

  return (
    <div className="filter-bar" role="search">
      <select
        aria-label="Status"
        value={filter.status ?? 'all'}
        onChange={(e) => onFilterChange({ ...filter, status: e.target.value as TaskStatus | 'all' })}
      >
        {STATUSES.map((status) => (
          <option key={status} value={status}>
            {status === 'all' ? 'Any status' : status.replace('_', ' ')}
          </option>
        ))}
      </select>
      <select
        aria-label="Priority"
        value={filter.priority ?? 'all'}
        onChange={(e) => onFilterChange({ ...filter, priority: e.target.value as Priority | 'all' })}
      >
        {PRIORITIES.map((priority) => (
          <option key={priority} value={priority}>
            {priority === 'all' ? 'Any priority' : priority}
          </option>
        ))}
      </select>
      <select
        aria-label="Assignee"
        value={filter.assignee ?? ''}
        onChange={(e) => onFilterChange({ ...filter, assignee: e.target.value || undefined })}
      >
        <option value="">Anyone</option>
        {assignees.map((name) => (
          <option key={name} value={name}>
            {name}
          </option>
        ))}
      </select>
      <select aria-label="Sort by" value={sortKey} onChange={(e) => onSortChange(e.target.value as SortKey)}>
        <option value="priority">Priority</option>
        <option value="dueDate">Due date</option>
        <option value="updatedAt">Recently updated</option>
        <option value="title">Title</option>
      </select>
      {active > 0 && (
        <button type="button" className="link-button" onClick={() => onFilterChange({})}>
          Clear {active} {active === 1 ? 'filter' : 'filters'}
        </button>
      )}
    </div>
  );
}
