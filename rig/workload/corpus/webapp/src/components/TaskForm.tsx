import { type FormEvent, useState } from 'react';
import type { NewTask, Priority } from '../api/types';
import { parseISODate } from '../utils/formatDate';

interface TaskFormProps {
  projectId: string | undefined;
  onSubmit: (input: NewTask) => Promise<void>;
}

export function TaskForm({ projectId, onSubmit }: TaskFormProps) {
  const [title, setTitle] = useState('');
  const [priority, setPriority] = useState<Priority>('medium');
  const [dueDate, setDueDate] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState(false);

  async function handleSubmit(event: FormEvent) {
    event.preventDefault();
    const trimmed = title.trim();
    if (!projectId) {
      setError('Pick a project first.');
      return;
    }
    if (trimmed.length === 0) {
      setError('A task needs a title.');
      return;
    }
    if (dueDate && !parseISODate(dueDate)) {
      setError('Due date must be YYYY-MM-DD.');
      return;
    }
    setSubmitting(true);
    setError(null);
    try {
      await onSubmit({ projectId, title: trimmed, priority, dueDate: dueDate || undefined });
      setTitle('');
      setDueDate('');
    } catch (err) {
      setError(err instanceof Error ? err.message : 'Could not create the task.');
    } finally {
      setSubmitting(false);
    }
  }

  return (
    <form className="task-form" onSubmit={handleSubmit} noValidate>
      <input
        aria-label="Task title"
        placeholder="What needs doing?"
        value={title}
        onChange={(e) => setTitle(e.target.value)}
        maxLength={200}
      />
      <select aria-label="Priority" value={priority} onChange={(e) => setPriority(e.target.value as Priority)}>
        <option value="urgent">Urgent</option>
        <option value="high">High</option>
        <option value="medium">Medium</option>
        <option value="low">Low</option>
      </select>
      <input aria-label="Due date" type="date" value={dueDate} onChange={(e) => setDueDate(e.target.value)} />
      <button type="submit" disabled={submitting}>
        {submitting ? 'Adding…' : 'Add task'}
      </button>
      {error && (
        <p className="task-form__error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
