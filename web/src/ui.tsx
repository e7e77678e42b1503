// The dashboard's small component kit: native, labelled HTML elements (so
// they are keyboard- and screen-reader-accessible by default) with the
// dashboard's styling. Text is always rendered as React text nodes: nothing
// a user typed ever reaches innerHTML.
import { useEffect, useId, useRef, useState, type ReactNode } from 'react';

export function Button({
  kind = 'secondary',
  busy,
  children,
  ...rest
}: React.ButtonHTMLAttributes<HTMLButtonElement> & { kind?: 'primary' | 'secondary' | 'danger'; busy?: boolean }) {
  return (
    <button type="button" className={`btn btn-${kind}`} disabled={busy || rest.disabled} aria-busy={busy || undefined} {...rest}>
      {children}
    </button>
  );
}

export function Field({
  label,
  hint,
  children,
}: {
  label: string;
  hint?: string;
  children: (id: string, describedBy?: string) => ReactNode;
}) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children(id, hintId)}
      {hint && (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      )}
    </div>
  );
}

export function ErrorText({ error }: { error: unknown }) {
  if (!error) return null;
  const msg = error instanceof Error ? error.message : String(error);
  return (
    <p className="error" role="alert">
      {msg}
    </p>
  );
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="muted" role="status">
      {label}
    </p>
  );
}

const stateTone: Record<string, string> = {
  ready: 'ok',
  pass: 'ok',
  active: 'ok',
  delivered: 'ok',
  healthy: 'ok',
  warn: 'warn',
  fail: 'bad',
  failing: 'bad',
  completed: 'ok',
  verified: 'ok',
  provisioning: 'busy',
  running: 'busy',
  pending: 'busy',
  resetting: 'busy',
  restoring: 'busy',
  importing: 'busy',
  deleting: 'warn',
  failed: 'bad',
  expired: 'warn',
  on: 'ok',
  enabled: 'ok',
  applied: 'ok',
  added: 'ok',
  stored: 'busy',
  removed: 'bad',
  changed: 'warn',
};

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge badge-${stateTone[state] ?? 'muted'}`}>{state}</span>;
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <Button
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setDone(true);
          setTimeout(() => setDone(false), 1500);
        } catch {
          setDone(false);
        }
      }}
    >
      {done ? 'Copied' : label}
    </Button>
  );
}

// mask hides the password of a postgres:// URL.
export function maskURL(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '••••••••';
    return u.toString().replace(/%E2%80%A2/g, '•');
  } catch {
    return '••••••••';
  }
}

// SecretURL shows a connection URL with its password hidden until revealed.
export function SecretURL({ label, url }: { label: string; url?: string }) {
  const [shown, setShown] = useState(false);
  if (!url) return null;
  return (
    <div className="secret">
      <span className="secret-label">{label}</span>
      <code aria-label={`${label} URL`} data-revealed={shown}>
        {shown ? url : maskURL(url)}
      </code>
      <div className="row">
        <Button onClick={() => setShown(!shown)} aria-pressed={shown}>
          {shown ? 'Hide' : 'Reveal'} <span className="sr-only">{label} password</span>
        </Button>
        <CopyButton text={url} label={`Copy ${label.toLowerCase()} URL`} />
      </div>
    </div>
  );
}

// Confirm is a modal <dialog>: focus is trapped by the browser, Escape closes.
export function Confirm({
  open,
  title,
  children,
  confirmLabel,
  danger,
  busy,
  onConfirm,
  onClose,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal?.();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} aria-labelledby={titleId} onClose={onClose} className="dialog">
      <h2 id={titleId}>{title}</h2>
      <div>{children}</div>
      <div className="row end">
        <Button onClick={onClose}>Cancel</Button>
        <Button kind={danger ? 'danger' : 'primary'} busy={busy} onClick={onConfirm}>
          {confirmLabel}
        </Button>
      </div>
    </dialog>
  );
}

export function formatTime(iso?: string) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function formatBytes(n?: number) {
  if (n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

// TableWrap scrolls wide tables sideways; it is focusable so keyboard users
// can scroll it too.
export function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="table-wrap" tabIndex={0} role="region" aria-label={label}>
      {children}
    </div>
  );
}
