/**
 * Task endpoints.
 *
 * TODO(api): these predate ApiClient and still talk to fetch directly, with
 * their own copy of the auth header and error handling. Move them onto
 * apiClient (see client.ts) like the rest of the API layer should be.
 */
import type { NewTask, Page, Task, TaskFilter, TaskPatch } from './types';

const BASE_URL = process.env.VITE_API_URL || 'http://localhost:8080/api';

function authHeaders(): Record<string, string> {
  const token = localStorage.getItem('token');
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function handle<T>(response: Response): Promise<T> {
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try {
      const body = await response.json();
      message = body?.error?.message ?? message;
    } catch {
      // not JSON; keep the status text
    }
    throw new Error(message);
  }
  return response.status === 204 ? (undefined as T) : ((await response.json()) as T);
}

export async function listTasks(filter: TaskFilter = {}, page = 1, pageSize = 50): Promise<Page<Task>> {
  const params = new URLSearchParams({ page: String(page), pageSize: String(pageSize) });
  if (filter.status && filter.status !== 'all') params.set('status', filter.status);
  if (filter.priority && filter.priority !== 'all') params.set('priority', filter.priority);
  if (filter.assignee) params.set('assignee', filter.assignee);
  if (filter.tag) params.set('tag', filter.tag);
  if (filter.projectId) params.set('projectId', filter.projectId);
  const response = await fetch(`${BASE_URL}/tasks?${params.toString()}`, {
    headers: { Accept: 'application/json', ...authHeaders() },
  });
  return handle<Page<Task>>(response);
}

export async function getTask(id: string): Promise<Task> {
  const response = await fetch(`${BASE_URL}/tasks/${encodeURIComponent(id)}`, {
    headers: { Accept: 'application/json', ...authHeaders() },
  });
  return handle<Task>(response);
}

export async function createTask(input: NewTask): Promise<Task> {
  const response = await fetch(`${BASE_URL}/tasks`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders() },
    body: JSON.stringify({ priority: 'medium', tags: [], ...input }),
  });
  return handle<Task>(response);
}

export async function updateTask(id: string, patch: TaskPatch): Promise<Task> {
  const response = await fetch(`${BASE_URL}/tasks/${encodeURIComponent(id)}`, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...authHeaders() },
    body: JSON.stringify(patch),
  });
  return handle<Task>(response);
}

export async function deleteTask(id: string): Promise<void> {
  const response = await fetch(`${BASE_URL}/tasks/${encodeURIComponent(id)}`, {
    method: 'DELETE',
    headers: authHeaders(),
  });
  return handle<void>(response);
}
