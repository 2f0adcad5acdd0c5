import type { Project } from '../api/types';

interface HeaderProps {
  projects: Project[];
  currentProjectId: string | undefined;
  onProjectChange: (projectId: string | undefined) => void;
  openCount: number;
}

export function Header({ projects, currentProjectId, onProjectChange, openCount }: HeaderProps) {
  return (
    <header className="header">
      <h1 className="header__title">Task Tracker</h1>
      <label className="header__project">
        <span className="visually-hidden">Project</span>
        <select
          value={currentProjectId ?? ''}
          onChange={(event) => onProjectChange(event.target.value || undefined)}
        >
          <option value="">All projects</option>
          {projects
            .filter((project) => !project.archived)
            .map((project) => (
              <option key={project.id} value={project.id}>
                {project.key} - {project.name}
              </option>
            ))}
        </select>
      </label>
      <span className="header__count" aria-live="polite">
        {openCount === 1 ? '1 open task' : `${openCount} open tasks`}
      </span>
    </header>
  );
}
