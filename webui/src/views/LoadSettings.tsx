// A model's load settings, saved on the server as its defaults (PUT /api/model-settings):
// context length, KV cache type, keep-alive; threads, flash attention and GPU layers are shown
// disabled with the server's reason when this server cannot apply them. Saving reloads the model
// (POST /api/generate with no prompt) with a visible state.
import { useEffect, useState } from 'preact/hooks';
import { getJson, sendJson } from '../api';

interface Capability { configurable?: boolean; available?: boolean; reason?: string }
interface SettingsAnswer {
  settings: Record<string, Record<string, unknown>>;
  capabilities: { gpu: Capability; flash_attention: Capability; num_thread: Capability; kv_cache_types: string[]; server_ctx: number };
}

export function LoadSettings({ model, onClose, dialog }: { model: string; onClose?(): void; dialog?: boolean }) {
  const [caps, setCaps] = useState<SettingsAnswer['capabilities'] | null>(null);
  const [ctx, setCtx] = useState('');
  const [kv, setKv] = useState('');
  const [keep, setKeep] = useState('');
  const [state, setState] = useState<{ kind: 'idle' | 'saving' | 'reloading' | 'loaded' | 'error'; text?: string }>({ kind: 'idle' });

  useEffect(() => {
    getJson<SettingsAnswer>('/api/model-settings')
      .then((r) => {
        setCaps(r.capabilities);
        const key = Object.keys(r.settings).find((k) => k === model || k === `${model}:latest`);
        const s = key ? r.settings[key] : {};
        setCtx(s.num_ctx !== undefined ? String(s.num_ctx) : '');
        setKv(typeof s.kv_cache_type === 'string' ? s.kv_cache_type : '');
        setKeep(s.keep_alive !== undefined ? String(s.keep_alive) : '');
      })
      .catch((e: Error) => setState({ kind: 'error', text: e.message }));
  }, [model]);

  const save = async (e: Event) => {
    e.preventDefault();
    setState({ kind: 'saving', text: 'Saving…' });
    try {
      const settings: Record<string, unknown> = {
        num_ctx: ctx.trim() ? Number(ctx) : null,
        kv_cache_type: kv || null,
        keep_alive: keep.trim() ? (/^-?\d+(\.\d+)?$/.test(keep.trim()) ? Number(keep) : keep.trim()) : null,
      };
      await sendJson('PUT', '/api/model-settings', { model, settings });
      setState({ kind: 'reloading', text: 'Reloading model…' });
      await sendJson('POST', '/api/generate', { model });
      setState({ kind: 'loaded', text: 'Loaded with these settings.' });
    } catch (err) {
      setState({ kind: 'error', text: (err as Error).message });
    }
  };

  // The fields appear once the saved values are in, so nothing typed is overwritten by them.
  const body = !caps ? (
    <p class={state.kind === 'error' ? 'error' : 'muted'} role={state.kind === 'error' ? 'alert' : 'status'}>
      {state.kind === 'error' ? state.text : 'Loading load settings…'}
    </p>
  ) : (
    <form class="load-settings" onSubmit={save} aria-labelledby="ls-title">
      <h2 id="ls-title">Load settings · {model}</h2>
      <p class="muted">Saved as this model's defaults: they apply to every request for it, from any app.</p>
      <div class="grid2">
        <div class="field">
          <label for="ls-ctx">Context length</label>
          <input id="ls-ctx" type="number" min={64} step={64} placeholder={`server: ${caps.server_ctx || 'model default'}`}
            value={ctx} onInput={(e) => setCtx(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ls-kv">KV cache type</label>
          <select id="ls-kv" value={kv} onChange={(e) => setKv(e.currentTarget.value)}>
            <option value="">server default</option>
            {caps.kv_cache_types.map((t) => <option key={t} value={t}>{t}</option>)}
          </select>
        </div>
        <div class="field">
          <label for="ls-keep">Keep alive</label>
          <input id="ls-keep" placeholder="5m, 1h, 0, -1 = forever" value={keep} onInput={(e) => setKeep(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ls-threads">Threads</label>
          <input id="ls-threads" type="number" disabled={!caps.num_thread.configurable} aria-describedby="ls-threads-why" placeholder="server-wide" />
          <small id="ls-threads-why" class="muted">{caps.num_thread.reason}</small>
        </div>
        <div class="field check">
          <input id="ls-fa" type="checkbox" checked disabled={!caps.flash_attention.configurable} aria-describedby="ls-fa-why" />
          <label for="ls-fa">Flash attention</label>
          <small id="ls-fa-why" class="muted">{caps.flash_attention.reason}</small>
        </div>
        <div class="field">
          <label for="ls-gpu">GPU layers</label>
          <input id="ls-gpu" type="number" value="0" disabled={!caps.gpu.available} aria-describedby="ls-gpu-why" />
          <small id="ls-gpu-why" class="muted">{caps.gpu.reason}</small>
        </div>
      </div>
      <div class="row">
        <button type="submit" class="primary" disabled={state.kind === 'saving' || state.kind === 'reloading'}>Save load settings</button>
        {onClose && <button type="button" onClick={onClose}>Close</button>}
      </div>
      {state.text && (
        <p class={state.kind === 'error' ? 'error' : 'note'} role={state.kind === 'error' ? 'alert' : 'status'}>
          {state.kind === 'reloading' && <span class="spinner" aria-hidden="true" />} {state.text}
        </p>
      )}
    </form>
  );
  if (!dialog) return body;
  return (
    <div class="modal-backdrop" onClick={(e) => e.target === e.currentTarget && onClose?.()}>
      <div class="modal" role="dialog" aria-modal="true" aria-labelledby="ls-title">{body}</div>
    </div>
  );
}
