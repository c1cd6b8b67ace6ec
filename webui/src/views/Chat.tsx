// The chat view: conversations persisted on the server, streaming replies from /api/chat with a
// stop button, regenerate, edit and resend, model switch mid-conversation, parameters per request.
// Every user message is saved before its reply is asked for, and every reply (finished, stopped or
// failed) is saved when it ends; a save that fails (server gone) is retried with the whole list on
// the next change, so nothing typed or received is lost.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, getJson, sendJson, streamNdjson, type ChatMessage, type Conversation } from '../api';
import { models } from '../models';
import { navigate } from '../router';
import { ChatSidebar } from './ChatSidebar';
import { Composer } from './Composer';
import { LoadSettings } from './LoadSettings';
import { MessageList } from './MessageList';
import { ParamsPanel } from './ParamsPanel';
import { emptyParams, fromOptions, toRequest, toStored, type Params } from './params';

interface ConvState {
  id?: string;
  title: string;
  model: string;
  system: string;
  messages: ChatMessage[];
}

const LAST_MODEL = 'hearth.lastModel';
// A conversation whose last save failed (server gone) is kept here until a save succeeds, so a
// page reload before the server is back loses nothing either.
const PENDING = (id: string) => `hearth.pending.${id}`;
function keepPending(c: ConvState) {
  if (c.id) localStorage.setItem(PENDING(c.id), JSON.stringify(c.messages));
}
function pendingMessages(id: string): ChatMessage[] | null {
  try {
    return JSON.parse(localStorage.getItem(PENDING(id)) ?? 'null') as ChatMessage[] | null;
  } catch {
    return null;
  }
}
const now = () => new Date().toISOString();

export function Chat({ id }: { id?: string }) {
  const [conv, setConv] = useState<ConvState>({ title: '', model: localStorage.getItem(LAST_MODEL) ?? '', system: '', messages: [] });
  const [params, setParams] = useState<Params>(emptyParams);
  const [streaming, setStreaming] = useState<number | null>(null);
  // From Send until the reply has ended and been saved (includes saving the user message first).
  const [busy, setBusy] = useState(false);
  const [replies, setReplies] = useState(0); // replies ended in this page (a hook for tests/automation)
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState('');
  const [refresh, setRefresh] = useState(0);
  const [showChats, setShowChats] = useState(false);
  const [showParams, setShowParams] = useState(() => window.innerWidth > 1100);
  const [loadSettingsOpen, setLoadSettingsOpen] = useState(false);
  const ctrl = useRef<AbortController | null>(null);
  // Stop pressed while the user message is still being saved: the reply is stopped as it starts.
  const stopSoon = useRef(false);
  const stop = () => {
    if (ctrl.current) ctrl.current.abort();
    else stopSoon.current = true;
  };
  const dirty = useRef(false); // the server's copy is behind (a save failed)
  const convRef = useRef(conv);
  convRef.current = conv;

  // Open a conversation (or a fresh one).
  useEffect(() => {
    if (!id) {
      if (convRef.current.id) setConv((c) => ({ title: '', model: c.model, system: '', messages: [] }));
      return;
    }
    if (id === convRef.current.id) return;
    getJson<Conversation>(`/api/conversations/${id}`)
      .then((c) => {
        // Messages this browser could not save last time (longer than the server's list): they win,
        // and are saved now.
        const pending = pendingMessages(c.id);
        const messages = pending && pending.length > c.messages.length ? pending : c.messages;
        const next = { id: c.id, title: c.title, model: c.model || convRef.current.model, system: c.system, messages };
        setConv(next);
        setParams(fromOptions(c.options));
        setError(null);
        if (messages === pending) void saveAllWith(next, c.options);
        else localStorage.removeItem(PENDING(c.id));
      })
      .catch((e: Error) => setError(e.message));
  }, [id]);

  // The picker needs a model: the last used, else the first installed.
  const names = models.value.map((m) => m.name);
  useEffect(() => {
    if (names.length && !names.includes(conv.model)) setConv((c) => ({ ...c, model: names[0] }));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [names.join('\n')]);

  // Saves the whole conversation (after edits, regenerations, failed saves).
  const saveAllWith = async (c: ConvState, options: Record<string, unknown>) => {
    if (!c.id) return;
    try {
      await sendJson('PUT', `/api/conversations/${c.id}`, { title: c.title, model: c.model, system: c.system, options, messages: c.messages });
      dirty.current = false;
      localStorage.removeItem(PENDING(c.id));
    } catch {
      dirty.current = true;
      keepPending(c);
    }
  };
  const saveAll = (c: ConvState) => saveAllWith(c, toStored(params));
  const append = async (c: ConvState, msgs: ChatMessage[]) => {
    if (!c.id) return;
    if (dirty.current) return saveAll(c);
    try {
      await sendJson('POST', `/api/conversations/${c.id}/messages`, { messages: msgs });
      await sendJson('PUT', `/api/conversations/${c.id}`, { model: c.model, system: c.system, options: toStored(params) });
    } catch {
      dirty.current = true;
      keepPending(c);
    }
  };

  // Streams a reply to `history` (which ends with a user message) and saves it.
  const generate = async (base: ConvState) => {
    const req = toRequest(params);
    if (req.error) return setError(req.error);
    const model = base.model;
    const reply: ChatMessage = { role: 'assistant', content: '', model, options: { ...req.options, ...(req.format ? { format: req.format } : {}) }, created_at: now() };
    const index = base.messages.length;
    let cur: ConvState = { ...base, messages: [...base.messages, reply] };
    setConv(cur);
    setStreaming(index);
    setError(null);
    setStatus('Generating…');
    const controller = new AbortController();
    ctrl.current = controller;
    if (stopSoon.current) {
      stopSoon.current = false;
      controller.abort();
    }
    const t0 = performance.now();
    let ttft: number | undefined;
    const wire = [
      ...(base.system.trim() ? [{ role: 'system', content: base.system }] : []),
      ...base.messages.filter((m) => m.role !== 'system').map((m) => ({ role: m.role, content: m.content, ...(m.tool_calls ? { tool_calls: m.tool_calls } : {}) })),
    ];
    const patch = (p: Partial<ChatMessage>) => {
      const msgs = cur.messages.slice();
      msgs[index] = { ...msgs[index], ...p };
      cur = { ...cur, messages: msgs };
      setConv(cur);
    };
    let content = '';
    let thinking = '';
    let toolCalls: unknown[] = [];
    try {
      await streamNdjson('/api/chat', { model, messages: wire, stream: true, options: req.options, ...(req.format !== undefined ? { format: req.format } : {}), ...(req.think ? { think: true } : {}) }, (line) => {
        const m = line.message as { content?: string; thinking?: string; tool_calls?: unknown[] } | undefined;
        if (m) {
          if ((m.content || m.thinking) && ttft === undefined) ttft = performance.now() - t0;
          content += m.content ?? '';
          thinking += m.thinking ?? '';
          if (m.tool_calls?.length) toolCalls = [...toolCalls, ...m.tool_calls];
        }
        if (line.done) {
          const evalCount = Number(line.eval_count ?? 0);
          const evalNs = Number(line.eval_duration ?? 0);
          patch({ content, thinking: thinking || undefined, tool_calls: toolCalls.length ? toolCalls : undefined, stats: {
            eval_count: evalCount, tokens_per_second: evalNs > 0 ? evalCount / (evalNs / 1e9) : undefined,
            ttft_ms: ttft, total_ms: performance.now() - t0 } });
        } else {
          patch({ content, thinking: thinking || undefined, tool_calls: toolCalls.length ? toolCalls : undefined });
        }
      }, controller.signal);
    } catch (e) {
      const err = e as Error;
      if (err.name === 'AbortError') patch({ stopped: true, stats: { ttft_ms: ttft, total_ms: performance.now() - t0 } });
      else patch({ error: err instanceof ApiError ? err.message : String(err.message) });
    } finally {
      ctrl.current = null;
      setStreaming(null);
      setStatus('Reply finished.');
    }
    await append(cur, [cur.messages[index]]);
    setRefresh((r) => r + 1);
    setReplies((n) => n + 1);
  };

  const send = async (text: string) => {
    stopSoon.current = false;
    setBusy(true);
    try {
      await sendInner(text);
    } finally {
      setBusy(false);
    }
  };
  const sendInner = async (text: string) => {
    const userMsg: ChatMessage = { role: 'user', content: text, created_at: now() };
    let c: ConvState = { ...conv, messages: [...conv.messages, userMsg] };
    localStorage.setItem(LAST_MODEL, c.model);
    if (!c.id) {
      const title = text.replace(/\s+/g, ' ').trim().slice(0, 40);
      try {
        const made = await sendJson<Conversation>('POST', '/api/conversations', { title, model: c.model, system: c.system, options: toStored(params), messages: c.messages });
        c = { ...c, id: made.id, title };
        convRef.current = c;
        navigate(`#/chat/${made.id}`);
      } catch (e) {
        setError((e as Error).message);
        return; // nothing was sent: the text stays in the box
      }
    } else {
      await append(c, [userMsg]);
    }
    setConv(c);
    setRefresh((r) => r + 1);
    await generate(c);
  };

  const rerun = (c: ConvState) => {
    setBusy(true);
    void saveAll(c)
      .then(() => generate(c))
      .finally(() => setBusy(false));
  };
  const actions = {
    busy,
    regenerate(index: number) {
      rerun({ ...convRef.current, messages: convRef.current.messages.slice(0, index) });
    },
    retry(index: number) {
      actions.regenerate(index);
    },
    editAndResend(index: number, text: string) {
      const msgs = convRef.current.messages.slice(0, index + 1);
      msgs[index] = { ...msgs[index], content: text };
      rerun({ ...convRef.current, messages: msgs });
    },
  };

  const newChat = () => {
    ctrl.current?.abort();
    setConv((c) => ({ title: '', model: c.model, system: '', messages: [] }));
    setParams(emptyParams);
    navigate('#/chat');
    setShowChats(false);
  };
  // Going narrow (a phone, a split window) turns the parameters overlay off; it would cover the chat.
  useEffect(() => {
    const narrow = window.matchMedia('(max-width: 900px)');
    const onChange = () => narrow.matches && setShowParams(false);
    narrow.addEventListener('change', onChange);
    return () => narrow.removeEventListener('change', onChange);
  }, []);
  // Global shortcuts: Escape stops, Ctrl/Cmd+Shift+O starts a new chat.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && busy) stop();
      if ((e.ctrlKey || e.metaKey) && e.shiftKey && e.key.toLowerCase() === 'o') {
        e.preventDefault();
        newChat();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  const paramError = toRequest(params).error;
  return (
    <div class={`chat ${showChats ? 'show-chats' : ''} ${showParams ? 'show-params' : ''}`}>
      <aside class="sidebar" aria-label="Chats">
        <ChatSidebar activeId={conv.id} refreshKey={refresh} onNew={newChat} />
      </aside>
      <main class="chat-main" aria-labelledby="chat-title" data-busy={busy ? 'true' : 'false'} data-replies={replies}>
        <div class="chat-head">
          <button type="button" class="small toggle-chats" aria-expanded={showChats} onClick={() => setShowChats(!showChats)}>Chats</button>
          <h1 id="chat-title" class="chat-title">{conv.title || 'New chat'}</h1>
          <label for="model-picker" class="sr-only">Model</label>
          <select id="model-picker" value={conv.model} onChange={(e) => setConv({ ...conv, model: e.currentTarget.value })}>
            {names.length === 0 && <option value="">No models: download one in Library</option>}
            {names.map((n) => <option key={n} value={n}>{n}</option>)}
          </select>
          <button type="button" class="small" aria-expanded={showParams} onClick={() => setShowParams(!showParams)}>Parameters</button>
        </div>
        {error && <p class="error banner" role="alert">{error}</p>}
        <MessageList messages={conv.messages} streamingIndex={streaming} actions={actions} conversationKey={conv.id ?? 'new'} />
        <Composer streaming={busy} disabled={!conv.model || Boolean(paramError)}
          onSend={send} onStop={stop} />
        <p class="sr-only" aria-live="polite">{status}</p>
      </main>
      {showParams && (
        <ParamsPanel system={conv.system} params={params} model={conv.model}
          onSystem={(s) => setConv({ ...conv, system: s })} onParams={setParams}
          onLoadSettings={() => setLoadSettingsOpen(true)} onClose={() => setShowParams(false)} />
      )}
      {loadSettingsOpen && conv.model && <LoadSettings model={conv.model} onClose={() => setLoadSettingsOpen(false)} dialog />}
    </div>
  );
}
