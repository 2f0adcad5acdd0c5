/**
 * Tiny clsx-style helper so components do not need the dependency for the
 * common case: cx('item', isDone && 'item--done', { 'item--urgent': urgent }).
 */
type ClassValue = string | false | null | undefined | Record<string, boolean | undefined>;

export function cx(...values: ClassValue[]): string {
  const classes: string[] = [];
  for (const value of values) {
    if (!value) continue;
    if (typeof value === 'string') {
      classes.push(value);
    } else {
      for (const [name, enabled] of Object.entries(value)) {
        if (enabled) classes.push(name);
      }
    }
  }
  return classes.join(' ');
}
