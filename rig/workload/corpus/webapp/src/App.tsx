import { useCallback, useEffect, useMemo, useState } from 'react';
import { listProjects } from './api/projects';
import type { Project, TaskFilter, TaskStatus } from './api/types';
import { EmptyState } from './components/EmptyState';
import { FilterBar } from './components/FilterBar';
import { Header } from './components/Header';
import { TaskForm } from './components/TaskForm';
import { TaskList } from './components/TaskList';
import { TaskStats } from './components/TaskStats';
import { useLocalStorage } from './hooks/useLocalStorage';
import { useTasks } from './hooks/useTasks';
import { collectAssignees, countActiveFilters } from './utils/filterTasks';
import type { SortKey } from './utils/sortTasks';

export default function App() {
  const [projects, setProjects] = useState<Project[]>([]);
  const [projectId, setProjectId] = useLocalStorage<string | undefined>('projectId', undefined);
  const [filter, setFilter] = useState<TaskFilter>({});
  const [sortKey, setSortKey] = useLocalStorage<SortKey>('sortKey', 'priority');
  const [grouped, setGrouped] = useLocalStorage('grouped', true);

  const effectiveFilter = useMemo(() => ({ ...filter, projectId }), [filter, projectId]);
  const { tasks, visibleTasks, loading, error, reload, addTask, editTask, removeTask } = useTasks(
    effectiveFilter,
    sortKey,
  );

  useEffect(() => {
    listProjects()
      .then(setProjects)
      .catch(() => setProjects([]));
  }, []);

  const handleStatusChange = useCallback(
    (id: string, status: TaskStatus) => void editTask(id, { status }),
    [editTask],
  );
  const handleDelete = useCallback((id: string) => void removeTask(id), [removeTask]);

  const openCount = tasks.filter((task) => task.status !== 'done').length;

  return (
    <div className="app">
      <Header
        projects={projects}
        currentProjectId={projectId}
        onProjectChange={setProjectId}
        openCount={openCount}
      />
      <main className="app__main">
        <TaskForm projectId={projectId} onSubmit={addTask} />
        <FilterBar
          filter={filter}
          onFilterChange={setFilter}
          sortKey={sortKey}
          onSortChange={setSortKey}
          assignees={collectAssignees(tasks)}
        />
        <label className="toggle">
          <input type="checkbox" checked={grouped} onChange={(e) => setGrouped(e.target.checked)} />
          Group by status
        </label>
        {error && (
          <div className="banner banner--error" role="alert">
            {error}{' '}
            <button type="button" className="link-button" onClick={() => void reload()}>
              Retry
            </button>
          </div>
        )}
        {loading ? (
          <p className="loading">Loading tasks…</p>
        ) : visibleTasks.length === 0 ? (
          <EmptyState filtered={countActiveFilters(filter) > 0} onClearFilters={() => setFilter({})} />
        ) : (
          <TaskList
            tasks={visibleTasks}
            grouped={grouped}
            onStatusChange={handleStatusChange}
            onDelete={handleDelete}
          />
        )}
      </main>
      <aside className="app__aside">
        <TaskStats tasks={tasks} />
      </aside>
    </div>
  );
}
