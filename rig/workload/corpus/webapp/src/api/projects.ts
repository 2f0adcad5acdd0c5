/**
 * Project endpoints. Same story as tasks.ts: direct fetch calls with a copy
 * of the header and error handling that ApiClient already provides.
 */
import type { Project, ProjectStats } from './types';

const BASE_URL = process.env.VITE_API_URL || 'http://localhost:8080/api';

function headers(): Record<string, string> {
  const token = localStorage.getItem('token');
  return token
    ? { Accept: 'application/json', Authorization: `Bearer ${token}` }
    : { Accept: 'application/json' };
}

export async function listProjects(includeArchived = false): Promise<Project[]> {
  const query = includeArchived ? '?archived=true' : '';
  const response = await fetch(`${BASE_URL}/projects${query}`, { headers: headers() });
  if (!response.ok) {
    throw new Error(`Failed to load projects: HTTP ${response.status}`);
  }
  return (await response.json()) as Project[];
}

export async function getProjectStats(projectId: string): Promise<ProjectStats> {
  const response = await fetch(`${BASE_URL}/projects/${encodeURIComponent(projectId)}/stats`, {
    headers: headers(),
  });
  if (!response.ok) {
    throw new Error(`Failed to load stats for ${projectId}: HTTP ${response.status}`);
  }
  return (await response.json()) as ProjectStats;
}
