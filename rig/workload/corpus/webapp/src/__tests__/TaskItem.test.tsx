import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Task } from '../api/types';
import { TaskItem } from '../components/TaskItem';

const NOW = new Date('2024-03-05T12:00:00Z');

const TASK: Task = {
  id: 't1',
  projectId: 'p1',
  title: 'Ship the release',
  status: 'todo',
  priority: 'high',
  assignee: 'maria',
  tags: ['release'],
  dueDate: '2024-03-04',
  createdAt: '2024-03-01T09:00:00Z',
  updatedAt: '2024-03-01T09:00:00Z',
};

describe('TaskItem', () => {
  it('renders title, assignee, tags and the due label', () => {
    render(<TaskItem task={TASK} onStatusChange={jest.fn()} onDelete={jest.fn()} now={NOW} />);
    expect(screen.getByText('Ship the release')).toBeInTheDocument();
    expect(screen.getByText('@maria')).toBeInTheDocument();
    expect(screen.getByText('#release')).toBeInTheDocument();
    expect(screen.getByText('1 day overdue')).toBeInTheDocument();
  });

  it('marks overdue open tasks', () => {
    render(<TaskItem task={TASK} onStatusChange={jest.fn()} onDelete={jest.fn()} now={NOW} />);
    expect(screen.getByTestId('task-t1')).toHaveClass('task--overdue');
  });

  it('advances the status when the checkbox is clicked', async () => {
    const onStatusChange = jest.fn();
    render(<TaskItem task={TASK} onStatusChange={onStatusChange} onDelete={jest.fn()} now={NOW} />);
    await userEvent.click(screen.getByRole('button', { name: /as in progress/ }));
    expect(onStatusChange).toHaveBeenCalledWith('t1', 'in_progress');
  });
});
