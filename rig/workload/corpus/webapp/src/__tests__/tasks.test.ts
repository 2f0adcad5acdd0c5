import { createTask, deleteTask, listTasks } from '../api/tasks';

function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

describe('api/tasks', () => {
  const fetchMock = jest.fn();

  beforeEach(() => {
    global.fetch = fetchMock as unknown as typeof fetch;
    localStorage.setItem('token', 'test-token');
  });

  it('sends filters as query parameters with the auth header', async () => {
    fetchMock.mockResolvedValueOnce(jsonResponse({ items: [], total: 0, page: 1, pageSize: 50 }));
    await listTasks({ status: 'todo', priority: 'all', assignee: 'maria' });
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toContain('/tasks?');
    expect(url).toContain('status=todo');
    expect(url).toContain('assignee=maria');
    expect(url).not.toContain('priority=');
    expect(init.headers.Authorization).toBe('Bearer test-token');
  });

  it('posts new tasks with defaults', async () => {
    fetchMock.mockResolvedValueOnce(jsonResponse({ id: 't9', title: 'New' }, 201));
    await createTask({ projectId: 'p1', title: 'New' });
    const [, init] = fetchMock.mock.calls[0];
    expect(init.method).toBe('POST');
    expect(JSON.parse(init.body)).toEqual({ priority: 'medium', tags: [], projectId: 'p1', title: 'New' });
  });

  it('surfaces the server error message', async () => {
    fetchMock.mockResolvedValueOnce(
      jsonResponse({ error: { code: 'not_found', message: 'Task t404 not found' } }, 404),
    );
    await expect(deleteTask('t404')).rejects.toThrow('Task t404 not found');
  });
});
