import type { Task, TaskStatus } from '../api/types';
import { groupByStatus } from '../utils/sortTasks';
import { TaskItem } from './TaskItem';

interface TaskListProps {
  tasks: Task[];
  grouped: boolean;
  onStatusChange: (id: string, status: TaskStatus) => void;
  onDelete: (id: string) => void;
}

const SECTION_TITLES: Record<TaskStatus, string> = {
  in_progress: 'In progress',
  todo: 'To do',
  done: 'Done',
};

export function TaskList({ tasks, grouped, onStatusChange, onDelete }: TaskListProps) {
  if (!grouped) {
    return (
      <ul className="task-list" aria-label="Tasks">
        {tasks.map((task) => (
          <TaskItem key={task.id} task={task} onStatusChange={onStatusChange} onDelete={onDelete} />
        ))}
      </ul>
    );
  }

  const groups = groupByStatus(tasks);
  const order: TaskStatus[] = ['in_progress', 'todo', 'done'];

  return (
    <div className="task-groups">
      {order
        .filter((status) => groups[status].length > 0)
        .map((status) => (
          <section key={status} className="task-group">
            <h2 className="task-group__title">
              {SECTION_TITLES[status]} <span className="count">{groups[status].length}</span>
            </h2>
            <ul className="task-list" aria-label={SECTION_TITLES[status]}>
              {groups[status].map((task) => (
                <TaskItem
                  key={task.id}
                  task={task}
                  onStatusChange={onStatusChange}
                  onDelete={onDelete}
                />
              ))}
            </ul>
          </section>
        ))}
    </div>
  );
}
