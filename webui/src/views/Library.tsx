// Installed models with what they are and can do, plus downloads and GGUF import.
import { useEffect, useState } from 'preact/hooks';
import { formatBytes, sendJson, type ShowAnswer, type TagModel } from '../api';
import { models, modelsError, refreshModels } from '../models';
import { navigate } from '../router';
import { Downloads } from './Downloads';
import { ImportGguf } from './ImportGguf';
import { ModelDetails } from './ModelDetails';

// /api/show per model, for context length and capabilities (cached for the session).
const showCache = new Map<string, ShowAnswer>();

function contextLength(s?: ShowAnswer): string {
  if (!s?.model_info) return '';
  const k = Object.keys(s.model_info).find((x) => x.endsWith('.context_length'));
  return k ? String(s.model_info[k]) : '';
}

function ModelRow({ m, onDetails }: { m: TagModel; onDetails(): void }) {
  const [show, setShow] = useState<ShowAnswer | undefined>(showCache.get(m.name));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (show) return;
    sendJson<ShowAnswer>('POST', '/api/show', { model: m.name })
      .then((s) => { showCache.set(m.name, s); setShow(s); })
      .catch(() => { /* the row still shows what /api/tags knows */ });
  }, [m.name]);
  const act = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      setError(null);
      await refreshModels();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const copy = () => {
    const dst = prompt(`Copy ${m.name} as`, `${m.name.split(':')[0]}-copy`);
    if (dst && dst.trim()) void act(() => sendJson('POST', '/api/copy', { source: m.name, destination: dst.trim() }));
  };
  const remove = () => {
    if (confirm(`Delete ${m.name}? Its files are removed unless another model shares them.`)) {
      void act(() => sendJson('DELETE', '/api/delete', { model: m.name }));
    }
  };
  const caps = show?.capabilities ?? [];
  return (
    <tr data-model={m.name}>
      <th scope="row">
        {m.name}
        {error && <p class="error" role="alert">{error}</p>}
      </th>
      <td>{m.details?.family ?? ''}</td>
      <td>{m.details?.parameter_size ?? ''}</td>
      <td>{m.details?.quantization_level ?? ''}</td>
      <td>{formatBytes(m.size)}</td>
      <td>{contextLength(show)}</td>
      <td>{caps.map((c) => <span class="badge" key={c}>{c}</span>)}</td>
      <td class="actions">
        <button type="button" class="small" onClick={() => { localStorage.setItem('hearth.lastModel', m.name); navigate('#/chat'); }}>Chat</button>
        <button type="button" class="small" onClick={onDetails}>Details</button>
        <button type="button" class="small" onClick={copy}>Copy</button>
        <button type="button" class="small danger" onClick={remove}>Delete</button>
      </td>
    </tr>
  );
}

export function Library() {
  const [details, setDetails] = useState<string | null>(null);
  useEffect(() => void refreshModels(), []);
  const list = models.value;
  return (
    <main class="page" aria-labelledby="lib-title">
      <h1 id="lib-title">Library</h1>
      <Downloads />
      <section class="card" aria-labelledby="installed-title">
        <h2 id="installed-title">Installed models</h2>
        {modelsError.value && <p class="error" role="alert">{modelsError.value}</p>}
        {list.length === 0 ? (
          <p class="muted">No models yet: download one above, find one in Discover, or import a GGUF.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th><th scope="col">Family</th><th scope="col">Parameters</th>
                  <th scope="col">Quantization</th><th scope="col">Size</th><th scope="col">Context</th>
                  <th scope="col">Capabilities</th><th scope="col"><span class="sr-only">Actions</span></th>
                </tr>
              </thead>
              <tbody>{list.map((m) => <ModelRow key={m.name} m={m} onDetails={() => setDetails(m.name)} />)}</tbody>
            </table>
          </div>
        )}
      </section>
      {details && <ModelDetails name={details} onClose={() => setDetails(null)} />}
      <ImportGguf />
    </main>
  );
}
