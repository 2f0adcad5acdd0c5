import type { Task } from '../api/types';
import { groupByStatus, sortTasks } from '../utils/sortTasks';

const base = { projectId: 'p1', tags: [], createdAt: '2024-03-01T09:00:00Z' };

const TASKS: Task[] = [
  { ...base, id: 'a', title: 'beta', status: 'todo', priority: 'low', updatedAt: '2024-03-02T10:00:00Z' },
  { ...base, id: 'b', title: 'Alpha', status: 'todo', priority: 'urgent', dueDate: '2024-03-09', updatedAt: '2024-03-01T10:00:00Z' },
  { ...base, id: 'c', title: 'gamma', status: 'done', priority: 'urgent', updatedAt: '2024-03-04T10:00:00Z' },
  { ...base, id: 'd', title: 'delta', status: 'in_progress', priority: 'medium', dueDate: '2024-03-06', updatedAt: '2024-03-03T10:00:00Z' },
];

describe('sortTasks', () => {
  it('puts open work first, then sorts by priority', () => {
    expect(sortTasks(TASKS, 'priority').map((t) => t.id)).toEqual(['d', 'b', 'a', 'c']);
  });

  it('sorts by due date with undated tasks last', () => {
    expect(sortTasks(TASKS, 'dueDate').map((t) => t.id)).toEqual(['d', 'b', 'a', 'c']);
  });

  it('sorts titles case-insensitively', () => {
    expect(sortTasks(TASKS, 'title').map((t) => t.id)).toEqual(['d', 'b', 'a', 'c']);
  });

  it('does not mutate its input', () => {
    const copy = [...TASKS];
    sortTasks(TASKS, 'updatedAt');
    expect(TASKS).toEqual(copy);
  });

  it('groups by status', () => {
    const groups = groupByStatus(TASKS);
    expect(groups.todo.map((t) => t.id)).toEqual(['a', 'b']);
    expect(groups.done).toHaveLength(1);
  });
});
