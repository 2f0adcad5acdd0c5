import { useCallback, useState } from 'react';

/**
 * useState that persists to localStorage under `key` as JSON.
 * Falls back to the initial value when storage is unavailable or corrupt.
 */
export function useLocalStorage<T>(key: string, initialValue: T): [T, (value: T) => void] {
  const [stored, setStored] = useState<T>(() => {
    try {
      const raw = window.localStorage.getItem(key);
      return raw === null ? initialValue : (JSON.parse(raw) as T);
    } catch {
      return initialValue;
    }
  });

  const setValue = useCallback(
    (value: T) => {
      setStored(value);
      try {
        window.localStorage.setItem(key, JSON.stringify(value));
      } catch {
        // Quota exceeded or private mode: keep the in-memory value only.
      }
    },
    [key],
  );

  return [stored, setValue];
}
