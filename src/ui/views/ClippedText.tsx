import { useState } from 'react';
import './views.css';

/** Longer than this (or with more line breaks), a text starts clipped to a few lines. */
const LONG_CHARS = 160;
const LONG_LINES = 4;

/**
 * A text that may be long (a whole document in a table cell): shown clipped to four lines with a
 * "show all" button, which expands it in place.
 */
export function ClippedText({ text, testid }: { text: string; testid?: string }) {
  const [open, setOpen] = useState(false);
  const long = text.length > LONG_CHARS || text.split('\n').length > LONG_LINES;
  if (!long) return <span data-testid={testid}>{text}</span>;
  return (
    <>
      <span className={open ? undefined : 'clipped'} data-testid={testid} data-clipped={open ? 'false' : 'true'}>
        {text}
      </span>
      <button type="button" className="link small clip-toggle" aria-expanded={open} onClick={() => setOpen(!open)}>
        {open ? 'show less' : `show all ${text.length.toLocaleString()} characters`}
      </button>
    </>
  );
}
