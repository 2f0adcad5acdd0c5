interface EmptyStateProps {
  filtered: boolean;
  onClearFilters: () => void;
}

/** Shown instead of the list when there is nothing to show. */
export function EmptyState({ filtered, onClearFilters }: EmptyStateProps) {
  if (filtered) {
    return (
      <div className="empty-state" role="status">
        <p>No tasks match the current filters.</p>
        <button type="button" className="link-button" onClick={onClearFilters}>
          Clear filters
        </button>
      </div>
    );
  }
  return (
    <div className="empty-state" role="status">
      <p>No tasks yet. Add one above to get started.</p>
    </div>
  );
}
