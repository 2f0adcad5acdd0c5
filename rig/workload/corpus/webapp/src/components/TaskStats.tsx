import type { Task } from '../api/types';
import { isOverdue } from '../utils/formatDate';

interface TaskStatsProps {
  tasks: Task[];
  now?: Date;
}

export function summarize(tasks: readonly Task[], now: Date = new Date()) {
  let done = 0;
  let overdue = 0;
  let urgent = 0;
  for (const task of tasks) {
    if (task.status === 'done') {
      done += 1;
      continue;
    }
    if (isOverdue(task.dueDate, now)) overdue += 1;
    if (task.priority === 'urgent') urgent += 1;
  }
  const total = tasks.length;
  const percentDone = total === 0 ? 0 : Math.round((done / total) * 100);
  return { total, done, overdue, urgent, percentDone };
}

export function TaskStats({ tasks, now }: TaskStatsProps) {
  const stats = summarize(tasks, now);
  return (
    <dl className="stats" aria-label="Task statistics">
      <div>
        <dt>Done</dt>
        <dd>
          {stats.done}/{stats.total} ({stats.percentDone}%)
        </dd>
      </div>
      <div className={stats.overdue > 0 ? 'stats__warn' : undefined}>
        <dt>Overdue</dt>
        <dd>{stats.overdue}</dd>
      </div>
      <div>
        <dt>Urgent</dt>
        <dd>{stats.urgent}</dd>
      </div>
    </dl>
  );
}
