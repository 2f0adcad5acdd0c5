import {
  addDays,
  daysUntil,
  formatDueLabel,
  formatRelativeTime,
  formatShortDate,
  isOverdue,
  isSameDay,
  parseISODate,
  startOfWeek,
  toISODate,
} from '../utils/formatDate';

const NOW = new Date('2024-03-05T15:30:00Z');

describe('formatDate', () => {
  describe('toISODate', () => {
    it('pads single-digit months and days', () => {
      expect(toISODate(new Date(Date.UTC(2024, 2, 5)))).toBe('2024-03-05');
    });
  });

  describe('parseISODate', () => {
    it('parses a calendar date as midnight UTC', () => {
      expect(parseISODate('2024-03-05')?.toISOString()).toBe('2024-03-05T00:00:00.000Z');
    });

    it('rejects other formats', () => {
      expect(parseISODate('03/05/2024')).toBeNull();
      expect(parseISODate('2024-3-5')).toBeNull();
    });
  });

  describe('formatShortDate', () => {
    it('uses the short month name', () => {
      expect(formatShortDate(new Date(Date.UTC(2024, 11, 31)))).toBe('Dec 31, 2024');
    });
  });

  describe('daysUntil / isOverdue', () => {
    it('counts whole days from today', () => {
      expect(daysUntil('2024-03-08', NOW)).toBe(3);
      expect(daysUntil('2024-03-04', NOW)).toBe(-1);
    });

    it('is not overdue on the due date itself', () => {
      expect(isOverdue('2024-03-05', NOW)).toBe(false);
      expect(isOverdue('2024-03-04', NOW)).toBe(true);
      expect(isOverdue(undefined, NOW)).toBe(false);
    });
  });

  describe('formatDueLabel', () => {
    it.each([
      ['2024-03-05', 'Due today'],
      ['2024-03-06', 'Due tomorrow'],
      ['2024-03-09', 'Due in 4 days'],
      ['2024-03-04', '1 day overdue'],
      ['2024-02-29', '5 days overdue'],
      ['2024-04-01', 'Apr 1, 2024'],
    ])('%s -> %s', (due, label) => {
      expect(formatDueLabel(due, NOW)).toBe(label);
    });
  });

  describe('addDays / startOfWeek / isSameDay', () => {
    it('crosses month and year boundaries', () => {
      expect(addDays(new Date('2024-02-28T10:00:00Z'), 2).toISOString()).toBe('2024-03-01T00:00:00.000Z');
      expect(addDays(new Date('2024-01-01T00:00:00Z'), -1).toISOString()).toBe('2023-12-31T00:00:00.000Z');
    });

    it('starts weeks on Monday', () => {
      // 2024-03-05 is a Tuesday; 2024-03-10 is a Sunday.
      expect(startOfWeek(NOW).toISOString()).toBe('2024-03-04T00:00:00.000Z');
      expect(startOfWeek(new Date('2024-03-10T23:59:00Z')).toISOString()).toBe('2024-03-04T00:00:00.000Z');
    });

    it('compares calendar days in UTC', () => {
      expect(isSameDay(NOW, new Date('2024-03-05T00:00:00Z'))).toBe(true);
      expect(isSameDay(NOW, new Date('2024-03-06T00:00:00Z'))).toBe(false);
    });
  });

  describe('formatRelativeTime', () => {
    it('uses coarse units', () => {
      expect(formatRelativeTime('2024-03-05T15:29:30Z', NOW)).toBe('just now');
      expect(formatRelativeTime('2024-03-05T15:00:00Z', NOW)).toBe('30 min ago');
      expect(formatRelativeTime('2024-03-05T10:30:00Z', NOW)).toBe('5 h ago');
      expect(formatRelativeTime('2024-03-03T15:30:00Z', NOW)).toBe('2 d ago');
    });
  });
});
