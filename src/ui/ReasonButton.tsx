import { type ButtonHTMLAttributes, useId } from 'react';

type Props = Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'disabled'> & {
  /** Why the button does nothing now; null or '' when it is enabled. */
  reason: string | null;
};

/**
 * A button that says why it is unavailable. A disabled <button> takes no focus and, in some
 * browsers, no hover, so its reason would stay unsaid: this one stays focusable with
 * aria-disabled, ignores clicks, shows the reason as its tooltip and gives it to screen readers.
 */
export function ReasonButton({ reason, onClick, className, title, children, ...rest }: Props) {
  const id = useId();
  const off = reason !== null && reason !== '';
  return (
    <>
      <button
        {...rest}
        type="button"
        className={`${className ?? ''}${off ? ' is-disabled' : ''}`.trim() || undefined}
        aria-disabled={off || undefined}
        aria-describedby={off ? id : undefined}
        title={off ? reason : title}
        onClick={off ? undefined : onClick}
      >
        {children}
      </button>
      {off && (
        <span id={id} className="visually-hidden">
          {reason}
        </span>
      )}
    </>
  );
}
