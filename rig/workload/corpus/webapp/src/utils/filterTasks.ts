import type { Task, TaskFilter } from '../api/types';

/** True when the task passes every criterion set in the filter. */
export function matchesFilter(task: Task, filter: TaskFilter): boolean {
  if (filter.status && filter.status !== 'all' && task.status !== filter.status) {
    return false;
  }
  if (filter.priority && filter.priority !== 'all' && task.priority !== filter.priority) {
    return false;
  }
  if (filter.assignee && task.assignee !== filter.assignee) {
    return false;
  }
  if (filter.tag && !task.tags.includes(filter.tag)) {
    return false;
  }
  if (filter.projectId && task.projectId !== filter.projectId) {
    return false;
  }
  return true;
}

export function filterTasks(tasks: readonly Task[], filter: TaskFilter): Task[] {
  return tasks.filter((task) => matchesFilter(task, filter));
}

/** Number of active criteria, shown as a badge on the filter button. */
export function countActiveFilters(filter: TaskFilter): number {
  let count = 0;
  if (filter.status && filter.status !== 'all') count += 1;
  if (filter.priority && filter.priority !== 'all') count += 1;
  if (filter.assignee) count += 1;
  if (filter.tag) count += 1;
  return count;
}

/** Distinct assignees, sorted, for the assignee dropdown. */
export function collectAssignees(tasks: readonly Task[]): string[] {
  const names = new Set<string>();
  for (const task of tasks) {
    if (task.assignee) names.add(task.assignee);
  }
  return [...names].sort((a, b) => a.localeCompare(b));
}
