import type { Priority, Task, TaskStatus } from '../api/types';

export type SortKey = 'priority' | 'dueDate' | 'updatedAt' | 'title';

const PRIORITY_RANK: Record<Priority, number> = { urgent: 0, high: 1, medium: 2, low: 3 };

const STATUS_RANK: Record<TaskStatus, number> = { in_progress: 0, todo: 1, done: 2 };

type Comparator = (a: Task, b: Task) => number;

const comparators: Record<SortKey, Comparator> = {
  priority: (a, b) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority],
  // Tasks without a due date go last.
  dueDate: (a, b) => {
    if (a.dueDate === b.dueDate) return 0;
    if (!a.dueDate) return 1;
    if (!b.dueDate) return -1;
    return a.dueDate < b.dueDate ? -1 : 1;
  },
  // Most recently updated first.
  updatedAt: (a, b) => b.updatedAt.localeCompare(a.updatedAt),
  title: (a, b) => a.title.localeCompare(b.title, undefined, { sensitivity: 'base' }),
};

/**
 * Sort tasks for display: open work before done work, then by the chosen key,
 * then by title so the order is stable between renders.
 */
export function sortTasks(tasks: readonly Task[], key: SortKey = 'priority'): Task[] {
  const byKey = comparators[key];
  return [...tasks].sort(
    (a, b) =>
      STATUS_RANK[a.status] - STATUS_RANK[b.status] || byKey(a, b) || comparators.title(a, b),
  );
}

export function groupByStatus(tasks: readonly Task[]): Record<TaskStatus, Task[]> {
  const groups: Record<TaskStatus, Task[]> = { todo: [], in_progress: [], done: [] };
  for (const task of tasks) {
    groups[task.status].push(task);
  }
  return groups;
}
