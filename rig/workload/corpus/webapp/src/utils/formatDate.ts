/**
 * Date helpers for due dates and timestamps.
 *
 * API timestamps are ISO-8601 strings in UTC and due dates are calendar dates
 * (YYYY-MM-DD). Everything here works in UTC so a task due on 2024-03-05 shows
 * that day for every user, whatever their time zone.
 */

export const MS_PER_DAY = 24 * 60 * 60 * 1000;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad2(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

/** Format a date as YYYY-MM-DD in UTC, the format the API uses for due dates. */
export function toISODate(date: Date): string {
  const year = date.getUTCFullYear();
  const month = pad2(date.getUTCMonth());
  const day = pad2(date.getUTCDate());
  return `${year}-${month}-${day}`;
}

/** Parse YYYY-MM-DD as midnight UTC; returns null for anything else. */
export function parseISODate(value: string): Date | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return null;
  const [, year, month, day] = match;
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "Mar 5, 2024" */
export function formatShortDate(date: Date): string {
  return `${MONTHS[date.getUTCMonth()]} ${date.getUTCDate()}, ${date.getUTCFullYear()}`;
}

/** Whole days from `now` to `due` (negative when overdue). */
export function daysUntil(due: string, now: Date = new Date()): number {
  const dueDate = parseISODate(due);
  if (!dueDate) return Number.NaN;
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Math.round((dueDate.getTime() - today) / MS_PER_DAY);
}

export function isOverdue(due: string | undefined, now: Date = new Date()): boolean {
  if (!due) return false;
  return daysUntil(due, now) < 0;
}

/** Label for the due-date chip: "Due today", "Due tomorrow", "3 days overdue", "Mar 5, 2024". */
export function formatDueLabel(due: string, now: Date = new Date()): string {
  const days = daysUntil(due, now);
  if (Number.isNaN(days)) return 'No due date';
  if (days === 0) return 'Due today';
  if (days === 1) return 'Due tomorrow';
  if (days < 0) return days === -1 ? '1 day overdue' : `${-days} days overdue`;
  if (days < 7) return `Due in ${days} days`;
  return formatShortDate(parseISODate(due) as Date);
}

/** The calendar date `days` after `date` (negative goes back), at midnight UTC. */
export function addDays(date: Date, days: number): Date {
  return new Date(
    Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + days),
  );
}

/** Monday of the week containing `date` (ISO weeks start on Monday), at midnight UTC. */
export function startOfWeek(date: Date): Date {
  const weekday = (date.getUTCDay() + 6) % 7; // Monday = 0 ... Sunday = 6
  return addDays(date, -weekday);
}

/** True when both dates fall on the same UTC calendar day. */
export function isSameDay(a: Date, b: Date): boolean {
  return (
    a.getUTCFullYear() === b.getUTCFullYear() &&
    a.getUTCMonth() === b.getUTCMonth() &&
    a.getUTCDate() === b.getUTCDate()
  );
}

/** "just now", "5 min ago", "3 h ago", "2 d ago", then the short date. */
export function formatRelativeTime(timestamp: string, now: Date = new Date()): string {
  const then = new Date(timestamp);
  const seconds = Math.floor((now.getTime() - then.getTime()) / 1000);
  if (seconds < 60) return 'just now';
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  if (seconds < 7 * 86400) return `${Math.floor(seconds / 86400)} d ago`;
  return formatShortDate(then);
}
