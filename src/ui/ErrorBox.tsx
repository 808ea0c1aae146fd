/**
 * A panel's error, shown while there is one. `alert` (the default) has screen readers announce it
 * as it appears (role="alert"); without it the error is shown beside what it is about, unannounced.
 */
export function ErrorBox({ message, testId, alert = true }: { message: string | null | undefined; testId?: string; alert?: boolean }) {
  if (!message) return null;
  return (
    <p className="error-box" data-testid={testId} role={alert ? 'alert' : undefined}>
      {message}
    </p>
  );
}
