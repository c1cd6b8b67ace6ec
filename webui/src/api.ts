// The one place that talks HTTP: hearth's public APIs (Ollama's + docs/WEBUI.md). Adds the API key
// from localStorage, turns every failure into an ApiError with the server's one-line message, and
// reports 401s so the app can show the login screen.
import { signal } from '@preact/signals';

const KEY_STORAGE = 'hearth.apiKey';
export const apiKey = signal<string>(localStorage.getItem(KEY_STORAGE) ?? '');
// Set when the server answers 401: the app shows the login screen with this message.
export const authError = signal<string | null>(null);

export function setApiKey(key: string) {
  apiKey.value = key;
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

function headers(extra?: HeadersInit): Headers {
  const h = new Headers(extra);
  if (apiKey.value) h.set('Authorization', `Bearer ${apiKey.value}`);
  return h;
}

async function errorFrom(res: Response): Promise<ApiError> {
  let msg = `HTTP ${res.status}`;
  try {
    const text = await res.text();
    try {
      const j = JSON.parse(text);
      msg = typeof j.error === 'string' ? j.error : (j.error?.message ?? msg);
    } catch {
      if (text) msg = text.slice(0, 300);
    }
  } catch {
    /* the body is gone too; keep the status */
  }
  if (res.status === 401) authError.value = msg;
  return new ApiError(msg, res.status);
}

// fetch() with the key; network failures become ApiError(status 0) with a readable message.
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers: headers(init.headers) });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError('cannot reach the hearth server (network error): is it still running?', 0);
  }
  if (!res.ok) throw await errorFrom(res);
  return res;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await request(path)).json() as Promise<T>;
}

export async function sendJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await request(path, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as T;
}

// Streams an NDJSON response line by line. A line with "error" ends the stream with an ApiError.
export async function streamNdjson(
  path: string,
  body: unknown,
  onLine: (line: Record<string, unknown>) => void,
  signal?: AbortSignal,
): Promise<void> {
  const res = await request(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal,
  });
  if (!res.body) throw new ApiError('the server sent no body', res.status);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let done = false;
  try {
    while (!done) {
      const chunk = await reader.read();
      done = chunk.done;
      buf += decoder.decode(chunk.value ?? new Uint8Array(), { stream: !done });
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const j = JSON.parse(line) as Record<string, unknown>;
        if (typeof j.error === 'string') throw new ApiError(j.error, 200);
        onLine(j);
      }
    }
  } catch (e) {
    const err = e as Error;
    if (err.name === 'AbortError' || err instanceof ApiError) throw e;
    // A reset connection mid-stream (the server went away).
    throw new ApiError('the connection to the server was lost mid-reply', 0);
  }
}

// ---- types of the answers the UI reads ----

export interface ModelDetails {
  family?: string;
  parameter_size?: string;
  quantization_level?: string;
}
export interface TagModel {
  name: string;
  size: number;
  modified_at: string;
  digest: string;
  details?: ModelDetails;
}
export interface ShowAnswer {
  modelfile?: string;
  template?: string;
  parameters?: string;
  license?: string;
  system?: string;
  details?: ModelDetails;
  model_info?: Record<string, unknown>;
  capabilities?: string[];
}
export interface PsModel {
  name: string;
  size: number;
  context_length?: number;
  kv_cache_type?: string;
  expires_at?: string;
}
export interface ConversationSummary {
  id: string;
  title: string;
  model: string;
  created_at: string;
  updated_at: string;
  message_count: number;
}
export interface ReplyStats {
  eval_count?: number;
  tokens_per_second?: number;
  ttft_ms?: number;
  total_ms?: number;
}
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
  thinking?: string;
  tool_calls?: unknown[];
  model?: string;
  stats?: ReplyStats;
  options?: Record<string, unknown>;
  error?: string;
  stopped?: boolean;
  created_at?: string;
}
export interface Conversation extends ConversationSummary {
  system: string;
  options: Record<string, unknown>;
  messages: ChatMessage[];
}
export interface Preset {
  name: string;
  system: string;
  options: Record<string, unknown>;
}

export const formatBytes = (n: number): string => {
  if (!Number.isFinite(n) || n <= 0) return '0 B';
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  const i = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1000)));
  return `${(n / 1000 ** i).toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
};
