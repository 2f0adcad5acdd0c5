/**
 * Types shared by the API layer and the UI. They mirror the JSON the tasks
 * service returns; keep them in sync with docs/api.md on the server side.
 */

export type TaskStatus = 'todo' | 'in_progress' | 'done';

export type Priority = 'low' | 'medium' | 'high' | 'urgent';

export interface Task {
  id: string;
  projectId: string;
  title: string;
  description?: string;
  status: TaskStatus;
  priority: Priority;
  assignee?: string;
  tags: string[];
  /** Calendar date, YYYY-MM-DD, no time zone. */
  dueDate?: string;
  /** ISO-8601 timestamp in UTC. */
  createdAt: string;
  /** ISO-8601 timestamp in UTC. */
  updatedAt: string;
}

export interface NewTask {
  projectId: string;
  title: string;
  description?: string;
  priority?: Priority;
  assignee?: string;
  tags?: string[];
  dueDate?: string;
}

export type TaskPatch = Partial<Omit<Task, 'id' | 'projectId' | 'createdAt' | 'updatedAt'>>;

export interface Project {
  id: string;
  name: string;
  key: string;
  archived: boolean;
}

export interface ProjectStats {
  projectId: string;
  total: number;
  byStatus: Record<TaskStatus, number>;
  overdue: number;
}

export interface TaskFilter {
  status?: TaskStatus | 'all';
  priority?: Priority | 'all';
  assignee?: string;
  tag?: string;
  projectId?: string;
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  pageSize: number;
}

export interface ApiErrorBody {
  error: {
    code: string;
    message: string;
    details?: Record<string, unknown>;
  };
}
