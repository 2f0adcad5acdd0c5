import type { Task } from '../api/types';
import { collectAssignees, countActiveFilters, filterTasks } from '../utils/filterTasks';

function task(overrides: Partial<Task>): Task {
  return {
    id: 't1',
    projectId: 'p1',
    title: 'Untitled',
    status: 'todo',
    priority: 'medium',
    tags: [],
    createdAt: '2024-03-01T09:00:00Z',
    updatedAt: '2024-03-01T09:00:00Z',
    ...overrides,
  };
}

const TASKS: Task[] = [
  task({ id: 't1', title: 'Write release notes', assignee: 'maria', tags: ['docs'] }),
  task({ id: 't2', title: 'Fix login redirect', priority: 'urgent', assignee: 'dev', status: 'in_progress' }),
  task({ id: 't3', title: 'Upgrade React', priority: 'low', status: 'done', tags: ['deps'] }),
  task({ id: 't4', title: 'Flaky date test', priority: 'high', assignee: 'maria', projectId: 'p2' }),
];

describe('filterTasks', () => {
  it('returns everything for an empty filter', () => {
    expect(filterTasks(TASKS, {})).toHaveLength(4);
  });

  it('treats "all" as no constraint', () => {
    expect(filterTasks(TASKS, { status: 'all', priority: 'all' })).toHaveLength(4);
  });

  it('combines criteria with AND', () => {
    const result = filterTasks(TASKS, { assignee: 'maria', priority: 'high' });
    expect(result.map((t) => t.id)).toEqual(['t4']);
  });

  it('filters by tag and project', () => {
    expect(filterTasks(TASKS, { tag: 'docs' }).map((t) => t.id)).toEqual(['t1']);
    expect(filterTasks(TASKS, { projectId: 'p2' }).map((t) => t.id)).toEqual(['t4']);
  });

  it('counts active filters, ignoring "all" and the project', () => {
    expect(countActiveFilters({ status: 'all', assignee: 'dev', projectId: 'p1' })).toBe(1);
  });

  it('collects distinct assignees in order', () => {
    expect(collectAssignees(TASKS)).toEqual(['dev', 'maria']);
  });
});
