import { ApiClient, ApiError, buildUrl } from '../api/client';

function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });
}

describe('buildUrl', () => {
  it('joins base and path without a double slash', () => {
    expect(buildUrl('http://api.test/v1/', '/tasks')).toBe('http://api.test/v1/tasks');
  });

  it('drops undefined and empty query values', () => {
    const url = buildUrl('http://api.test', '/tasks', { status: 'todo', tag: '', page: 2, q: undefined });
    expect(url).toBe('http://api.test/tasks?status=todo&page=2');
  });
});

describe('ApiClient', () => {
  const fetchMock = jest.fn();

  beforeEach(() => {
    global.fetch = fetchMock as unknown as typeof fetch;
  });

  it('adds the bearer token and JSON headers', async () => {
    fetchMock.mockResolvedValueOnce(jsonResponse({ ok: true }));
    const client = new ApiClient('http://api.test', () => 'secret');
    await client.post('/tasks', { title: 'x' });
    const [, init] = fetchMock.mock.calls[0];
    expect(init.headers).toMatchObject({
      Authorization: 'Bearer secret',
      'Content-Type': 'application/json',
    });
  });

  it('turns error bodies into ApiError', async () => {
    fetchMock.mockResolvedValueOnce(jsonResponse({ error: { code: 'forbidden', message: 'No access' } }, 403));
    const client = new ApiClient('http://api.test', () => null);
    await expect(client.get('/projects')).rejects.toEqual(new ApiError(403, 'forbidden', 'No access'));
  });
});
