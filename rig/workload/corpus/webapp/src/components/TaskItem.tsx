import type { Task, TaskStatus } from '../api/types';
import { cx } from '../utils/classNames';
import { formatDueLabel, isOverdue } from '../utils/formatDate';
import { PriorityBadge } from './PriorityBadge';

interface TaskItemProps {
  task: Task;
  onStatusChange: (id: string, status: TaskStatus) => void;
  onDelete: (id: string) => void;
  now?: Date;
}

const NEXT_STATUS: Record<TaskStatus, TaskStatus> = {
  todo: 'in_progress',
  in_progress: 'done',
  done: 'todo',
};

export function TaskItem({ task, onStatusChange, onDelete, now = new Date() }: TaskItemProps) {
  const overdue = task.status !== 'done' && isOverdue(task.dueDate, now);

  return (
    <li
      className={cx('task', `task--${task.status}`, { 'task--overdue': overdue })}
      data-testid={`task-${task.id}`}
    >
      <button
        type="button"
        className="task__status"
        aria-label={`Mark "${task.title}" as ${NEXT_STATUS[task.status].replace('_', ' ')}`}
        onClick={() => onStatusChange(task.id, NEXT_STATUS[task.status])}
      />
      <div className="task__body">
        <span className="task__title">{task.title}</span>
        {task.description && <p className="task__description">{task.description}</p>}
        <div className="task__meta">
          <PriorityBadge priority={task.priority} />
          {task.assignee && <span className="task__assignee">@{task.assignee}</span>}
          {task.tags.map((tag) => (
            <span key={tag} className="tag">
              #{tag}
            </span>
          ))}
          {task.dueDate && (
            <span className={cx('task__due', { 'task__due--overdue': overdue })}>
              {formatDueLabel(task.dueDate, now)}
            </span>
          )}
        </div>
      </div>
      <button
        type="button"
        className="task__delete"
        aria-label={`Delete "${task.title}"`}
        onClick={() => onDelete(task.id)}
      >
        ×
      </button>
    </li>
  );
}
