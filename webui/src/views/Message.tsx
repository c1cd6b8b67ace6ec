// One chat message: Markdown (rendered once per text), collapsible thinking, tool calls, per-reply
// stats (tokens/s, time to first token) and the options that were applied, an error line, and the
// actions (copy, regenerate, edit and resend).
import { memo } from 'preact/compat';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { ChatMessage } from '../api';
import { renderMarkdown } from '../markdown';

export interface MessageActions {
  regenerate(index: number): void;
  editAndResend(index: number, text: string): void;
  retry(index: number): void;
  busy: boolean;
}

interface Props {
  index: number;
  message: ChatMessage;
  streaming: boolean;
  actions: MessageActions;
  observer: ResizeObserver | null;
}

function statsLine(m: ChatMessage): string | null {
  const s = m.stats;
  if (!s) return null;
  const parts: string[] = [];
  if (s.tokens_per_second !== undefined) parts.push(`${s.tokens_per_second.toFixed(1)} tok/s`);
  if (s.ttft_ms !== undefined) parts.push(`TTFT ${Math.round(s.ttft_ms)} ms`);
  if (s.eval_count !== undefined) parts.push(`${s.eval_count} tokens`);
  return parts.join(' · ');
}

function appliedLine(m: ChatMessage): string | null {
  const o = m.options;
  if (!o) return null;
  const entries = Object.entries(o).map(([k, v]) => `${k.replace(/_/g, ' ')} ${Array.isArray(v) ? v.join('|') : typeof v === 'object' ? 'schema' : String(v)}`);
  return entries.length ? `Applied: ${entries.join(', ')}` : 'Applied: server defaults';
}

function MessageViewImpl({ index, message: m, streaming, actions, observer }: Props) {
  const root = useRef<HTMLElement>(null);
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState('');
  useLayoutEffect(() => {
    const el = root.current;
    if (!el || !observer) return;
    observer.observe(el);
    return () => observer.unobserve(el);
  }, [observer]);

  const roleLabel = m.role === 'assistant' ? (m.model ? `Assistant · ${m.model}` : 'Assistant') : m.role === 'user' ? 'You' : m.role;
  const stats = statsLine(m);
  const applied = m.role === 'assistant' ? appliedLine(m) : null;
  return (
    <article ref={root} class={`msg msg-${m.role}`} data-role={m.role} data-index={index} aria-label={`${roleLabel} message`}>
      <header class="msg-head">{roleLabel}</header>
      {m.thinking && (
        <details class="thinking" open={streaming && !m.content}>
          <summary>Thinking</summary>
          <div class="thinking-body">{m.thinking}</div>
        </details>
      )}
      {editing ? (
        <div class="edit">
          <label for={`edit-${index}`} class="sr-only">Edit message</label>
          <textarea id={`edit-${index}`} value={draft} onInput={(e) => setDraft(e.currentTarget.value)} rows={4} />
          <div class="row">
            <button type="button" class="primary" disabled={!draft.trim() || actions.busy}
              onClick={() => { setEditing(false); actions.editAndResend(index, draft); }}>
              Save &amp; resend
            </button>
            <button type="button" onClick={() => setEditing(false)}>Cancel</button>
          </div>
        </div>
      ) : m.role === 'assistant' ? (
        <div class="content md" data-testid="message-content"
          // eslint-disable-next-line react/no-danger -- markdown-it with html:false: escaped text only
          dangerouslySetInnerHTML={{ __html: renderMarkdown(m.content || (streaming ? '…' : '')) }} />
      ) : (
        <div class="content plain" data-testid="message-content">{m.content}</div>
      )}
      {m.tool_calls && m.tool_calls.length > 0 && (
        <details class="tool-calls" open>
          <summary>Tool calls</summary>
          <pre>{JSON.stringify(m.tool_calls, null, 2)}</pre>
        </details>
      )}
      {m.error && (
        <p class="error" role="alert">
          Error: {m.error}{' '}
          <button type="button" class="link" disabled={actions.busy} onClick={() => actions.retry(index)}>Retry</button>
        </p>
      )}
      {m.stopped && !m.error && <p class="note">Stopped.</p>}
      {stats && <p class="stats" data-testid="reply-stats">{stats}</p>}
      {applied && !streaming && <p class="applied" data-testid="applied-options">{applied}</p>}
      {!streaming && !editing && (
        <div class="msg-actions">
          <button type="button" class="small" onClick={() => void navigator.clipboard?.writeText(m.content)}>
            Copy<span class="sr-only"> message</span>
          </button>
          {m.role === 'assistant' && (
            <button type="button" class="small" disabled={actions.busy} onClick={() => actions.regenerate(index)}>Regenerate</button>
          )}
          {m.role === 'user' && (
            <button type="button" class="small" disabled={actions.busy}
              onClick={() => { setDraft(m.content); setEditing(true); }}>Edit</button>
          )}
        </div>
      )}
    </article>
  );
}

export const MessageView = memo(MessageViewImpl);
