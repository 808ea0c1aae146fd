import { useRef, useState, type DragEvent, type ReactNode } from 'react';
import { entriesFromDataTransfer, entriesFromFiles, type FileEntry } from '../io/browser-files';
import { errorMessage } from '../util/errors';

export interface DropZoneProps {
  testid: string;
  /** What the zone asks for, e.g. "Drop a dataset file or click to pick one". */
  children: ReactNode;
  accept?: string;
  multiple?: boolean;
  /** Pick a whole folder (webkitdirectory) instead of files. */
  directory?: boolean;
  disabled?: boolean;
  onFiles(entries: FileEntry[], name: string): void;
}

/** A click-to-pick and drag-and-drop target for files or folders. */
export function DropZone({ testid, children, accept, multiple, directory, disabled, onFiles }: DropZoneProps) {
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const deliver = (entries: FileEntry[], rawName: string) => {
    setError(null);
    if (entries.length === 0) {
      setError('nothing usable was dropped');
      return;
    }
    onFiles(entries, rawName);
  };

  const onDrop = (e: DragEvent<HTMLDivElement>) => {
    e.preventDefault();
    setOver(false);
    if (disabled) return;
    const first = e.dataTransfer.items[0]?.webkitGetAsEntry?.();
    const name = first?.name ?? e.dataTransfer.files[0]?.name ?? 'dropped files';
    entriesFromDataTransfer(e.dataTransfer).then(
      (entries) => deliver(entries, name),
      (err: unknown) => setError(errorMessage(err)),
    );
  };

  return (
    <div
      className={`dropzone${over ? ' over' : ''}${disabled ? ' disabled' : ''}`}
      data-testid={testid}
      role="button"
      tabIndex={disabled ? -1 : 0}
      aria-disabled={disabled}
      onClick={() => !disabled && input.current?.click()}
      onKeyDown={(e) => {
        if (!disabled && (e.key === 'Enter' || e.key === ' ')) {
          e.preventDefault();
          input.current?.click();
        }
      }}
      onDragOver={(e) => {
        e.preventDefault();
        if (!disabled) setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      {children}
      <input
        ref={input}
        type="file"
        hidden
        data-testid={`${testid}-input`}
        accept={accept}
        multiple={multiple || directory}
        {...(directory ? { webkitdirectory: '', directory: '' } : {})}
        onChange={(e) => {
          const files = e.currentTarget.files;
          if (files && files.length > 0) {
            const first = files[0];
            const name = directory ? (first.webkitRelativePath.split('/')[0] || first.name) : first.name;
            deliver(entriesFromFiles(files), name);
          }
          e.currentTarget.value = '';
        }}
      />
      {error && <p className="field-error">{error}</p>}
    </div>
  );
}
