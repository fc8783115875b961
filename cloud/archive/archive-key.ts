/**
 * Refuses a key that could name something outside the archive's root or collide with a
 * writer's temporary file: keys are relative, `/`-separated, and no segment is empty or
 * starts with `.` (which rules out `.` and `..`, and leaves dot-names to the writers).
 */
export function checkArchiveKey(key: string): string {
  const problem =
    key === ''
      ? 'is empty'
      : key.startsWith('/')
        ? 'is absolute'
        : key.includes('\\') || key.includes('\0')
          ? 'contains a backslash or NUL'
          : key.split('/').some((segment) => segment === '' || segment.startsWith('.'))
            ? 'has an empty segment or one starting with "."'
            : undefined;
  if (problem) throw new Error(`archive key ${JSON.stringify(key)} ${problem}`);
  return key;
}

/** A listing prefix: its whole segments follow the key rules; the last, partial one only filters. */
export function checkArchivePrefix(prefix: string): string {
  const dir = prefix.slice(0, prefix.lastIndexOf('/') + 1);
  if (dir !== '') checkArchiveKey(dir.slice(0, -1));
  return prefix;
}
