// The conversation list (server-side, /api/conversations): search, new, rename, delete, export.
import { useEffect, useState } from 'preact/hooks';
import { getJson, request, sendJson, type ConversationSummary } from '../api';
import { navigate } from '../router';

interface Props {
  activeId?: string;
  refreshKey: number;
  onNew(): void;
}

async function download(id: string, format: 'markdown' | 'json') {
  const res = await request(`/api/conversations/${id}/export?format=${format}`);
  const disposition = res.headers.get('Content-Disposition') ?? '';
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `conversation-${id}.${format === 'json' ? 'json' : 'md'}`;
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function ChatSidebar({ activeId, refreshKey, onNew }: Props) {
  const [list, setList] = useState<ConversationSummary[]>([]);
  const [query, setQuery] = useState('');
  const [error, setError] = useState<string | null>(null);
  const load = () =>
    getJson<{ conversations: ConversationSummary[] }>(`/api/conversations${query ? `?q=${encodeURIComponent(query)}` : ''}`)
      .then((r) => { setList(r.conversations); setError(null); })
      .catch((e: Error) => setError(e.message));
  useEffect(() => {
    const t = setTimeout(load, query ? 200 : 0);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [query, refreshKey]);

  const act = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
    void load();
  };
  const rename = (c: ConversationSummary) => {
    const title = prompt('New name for this chat', c.title);
    if (title !== null && title.trim()) void act(() => sendJson('PUT', `/api/conversations/${c.id}`, { title: title.trim() }));
  };
  const remove = (c: ConversationSummary) => {
    if (!confirm(`Delete “${c.title || 'Untitled'}”? This cannot be undone.`)) return;
    void act(async () => {
      await sendJson('DELETE', `/api/conversations/${c.id}`);
      if (c.id === activeId) navigate('#/chat');
    });
  };

  return (
    <div class="sidebar-inner">
      <button type="button" class="primary wide" onClick={onNew}>New chat</button>
      <label for="chat-search" class="sr-only">Search chats</label>
      <input id="chat-search" type="search" placeholder="Search chats" value={query} onInput={(e) => setQuery(e.currentTarget.value)} />
      {error && <p class="error" role="alert">{error}</p>}
      <ul class="conv-list" aria-label="Chats">
        {list.map((c) => (
          <li key={c.id} class={c.id === activeId ? 'active' : ''}>
            <a href={`#/chat/${c.id}`} aria-current={c.id === activeId ? 'page' : undefined}>
              <span class="conv-title">{c.title || 'Untitled'}</span>
              <span class="conv-meta">{c.model} · {c.message_count} messages</span>
            </a>
            {c.id === activeId && (
              <div class="conv-actions">
                <button type="button" class="small" onClick={() => rename(c)}>Rename</button>
                <button type="button" class="small" onClick={() => remove(c)}>Delete chat</button>
                <button type="button" class="small" onClick={() => void act(() => download(c.id, 'markdown'))}>Export Markdown</button>
                <button type="button" class="small" onClick={() => void act(() => download(c.id, 'json'))}>Export JSON</button>
              </div>
            )}
          </li>
        ))}
        {list.length === 0 && !error && <li class="muted">{query ? 'No chat matches.' : 'No chats yet.'}</li>}
      </ul>
    </div>
  );
}
