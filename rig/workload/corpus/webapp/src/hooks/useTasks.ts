import { useCallback, useEffect, useMemo, useState } from 'react';
import { createTask, deleteTask, listTasks, updateTask } from '../api/tasks';
import type { NewTask, Task, TaskFilter, TaskPatch } from '../api/types';
import { filterTasks } from '../utils/filterTasks';
import { sortTasks, type SortKey } from '../utils/sortTasks';

export interface UseTasksResult {
  tasks: Task[];
  visibleTasks: Task[];
  loading: boolean;
  error: string | null;
  reload: () => Promise<void>;
  addTask: (input: NewTask) => Promise<void>;
  editTask: (id: string, patch: TaskPatch) => Promise<void>;
  removeTask: (id: string) => Promise<void>;
}

/**
 * Loads the task list once and keeps it in memory. Filtering and sorting are
 * done client-side; the list is small (one page of 200 tasks at most).
 */
export function useTasks(filter: TaskFilter, sortKey: SortKey): UseTasksResult {
  const [tasks, setTasks] = useState<Task[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const reload = useCallback(async () => {
    setLoading(true);
    setError(null);
    try {
      const page = await listTasks({ projectId: filter.projectId }, 1, 200);
      setTasks(page.items);
    } catch (err) {
      setError(err instanceof Error ? err.message : 'Failed to load tasks');
    } finally {
      setLoading(false);
    }
  }, [filter.projectId]);

  useEffect(() => {
    void reload();
  }, [reload]);

  const addTask = useCallback(async (input: NewTask) => {
    const created = await createTask(input);
    setTasks((current) => [created, ...current]);
  }, []);

  const editTask = useCallback(async (id: string, patch: TaskPatch) => {
    const updated = await updateTask(id, patch);
    setTasks((current) => current.map((task) => (task.id === id ? updated : task)));
  }, []);

  const removeTask = useCallback(async (id: string) => {
    await deleteTask(id);
    setTasks((current) => current.filter((task) => task.id !== id));
  }, []);

  const visibleTasks = useMemo(
    () => sortTasks(filterTasks(tasks, filter), sortKey),
    [tasks, filter, sortKey],
  );

  return { tasks, visibleTasks, loading, error, reload, addTask, editTask, removeTask };
}
