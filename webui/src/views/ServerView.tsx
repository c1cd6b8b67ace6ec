// The server and the machine: loaded models (/api/ps) with unload, CPU and memory (/api/system), a
// live summary of /metrics and the recent log lines (/api/logs), polled every 2 s while shown.
import { useEffect, useRef, useState } from 'preact/hooks';
import { formatBytes, getJson, request, sendJson, type PsModel } from '../api';

interface System {
  version: string;
  cpu: { name: string; isa: string; features: string[]; cores: number; threads: number };
  memory: { total: number; available: number };
  gpu: { available: boolean; reason: string };
  data_dir: string;
  models_dir: string;
  server: { parallel: number; ctx: number; kv_type: string; threads: number; keep_alive_seconds: number };
}
interface LogLine { seq: number; time: string; text: string }

// Sums every sample of each metric name in a Prometheus text exposition; samples with a `state`
// label are also summed under "name.state".
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    out.set(m[1], (out.get(m[1]) ?? 0) + Number(m[3]));
    const state = /state="([^"]+)"/.exec(m[2] ?? '')?.[1];
    if (state) out.set(`${m[1]}.${state}`, (out.get(`${m[1]}.${state}`) ?? 0) + Number(m[3]));
  }
  return out;
}

export function ServerView() {
  const [sys, setSys] = useState<System | null>(null);
  const [ps, setPs] = useState<PsModel[]>([]);
  const [metrics, setMetrics] = useState<Map<string, number>>(new Map());
  const [rate, setRate] = useState(0);
  const [logs, setLogs] = useState<LogLine[]>([]);
  const [error, setError] = useState<string | null>(null);
  const lastSeq = useRef(0);
  const lastTokens = useRef<{ t: number; n: number } | null>(null);

  const poll = async () => {
    try {
      const [s, p, m, l] = await Promise.all([
        getJson<System>('/api/system'),
        getJson<{ models: PsModel[] }>('/api/ps'),
        request('/metrics').then((r) => r.text()),
        getJson<{ lines: LogLine[] }>(`/api/logs?after=${lastSeq.current}`),
      ]);
      setSys(s);
      setPs(p.models);
      const mm = parseMetrics(m);
      setMetrics(mm);
      const n = mm.get('hearth_generated_tokens_total') ?? 0;
      const t = performance.now();
      if (lastTokens.current && t > lastTokens.current.t) setRate(((n - lastTokens.current.n) * 1000) / (t - lastTokens.current.t));
      lastTokens.current = { t, n };
      if (l.lines.length) {
        lastSeq.current = l.lines[l.lines.length - 1].seq;
        setLogs((old) => [...old, ...l.lines].slice(-300));
      }
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => {
    void poll();
    const t = setInterval(poll, 2000);
    return () => clearInterval(t);
  }, []);
  const unload = async (name: string) => {
    try {
      await sendJson('POST', '/api/unload', { model: name });
      await poll();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const g = (k: string) => metrics.get(k) ?? 0;
  return (
    <main class="page" aria-labelledby="srv-title">
      <h1 id="srv-title">Server</h1>
      {error && <p class="error banner" role="alert">{error}</p>}
      <section class="card" aria-labelledby="loaded-title">
        <h2 id="loaded-title">Loaded models</h2>
        {ps.length === 0 ? <p class="muted">No model is loaded; one loads on its first request.</p> : (
          <div class="table-wrap">
            <table>
              <thead><tr><th scope="col">Model</th><th scope="col">Memory</th><th scope="col">Context</th><th scope="col">KV cache</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {ps.map((m) => (
                  <tr key={m.name}>
                    <th scope="row">{m.name}</th>
                    <td>{formatBytes(m.size)}</td>
                    <td>{m.context_length}</td>
                    <td>{m.kv_cache_type}</td>
                    <td>{m.expires_at?.startsWith('2318') ? 'never' : m.expires_at ? new Date(m.expires_at).toLocaleTimeString() : ''}</td>
                    <td><button type="button" class="small" onClick={() => void unload(m.name)}>Unload<span class="sr-only"> {m.name}</span></button></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <div class="grid2">
        <section class="card" aria-labelledby="hw-title">
          <h2 id="hw-title">Hardware</h2>
          {sys && (
            <dl class="kv">
              <dt>CPU</dt><dd>{sys.cpu.name}</dd>
              <dt>Kernels</dt><dd>{sys.cpu.isa} ({sys.cpu.features.join(', ') || 'baseline'})</dd>
              <dt>Cores</dt><dd>{sys.cpu.cores} cores, {sys.cpu.threads} threads</dd>
              <dt>Memory</dt><dd>{formatBytes(sys.memory.available)} free of {formatBytes(sys.memory.total)}</dd>
              <dt>GPU</dt><dd>{sys.gpu.available ? 'available' : `none: ${sys.gpu.reason}`}</dd>
              <dt>Server</dt><dd>{sys.server.parallel} parallel · {sys.server.threads} threads · KV {sys.server.kv_type} · keep-alive {sys.server.keep_alive_seconds} s</dd>
              <dt>Data</dt><dd><code>{sys.data_dir}</code></dd>
            </dl>
          )}
        </section>
        <section class="card" aria-labelledby="metrics-title">
          <h2 id="metrics-title">Activity</h2>
          <dl class="kv">
            <dt>Requests</dt><dd>{g('hearth_requests_total')}</dd>
            <dt>Tokens generated</dt><dd>{g('hearth_generated_tokens_total')}</dd>
            <dt>Generation rate</dt><dd>{rate.toFixed(1)} tokens/s</dd>
            <dt>Running</dt><dd>{g('hearth_running_sequences')} sequences</dd>
            <dt>Queue</dt><dd>{g('hearth_queue_depth')} waiting</dd>
            <dt>KV blocks</dt><dd>{g('hearth_kv_blocks.used')} used · {g('hearth_kv_blocks.cached')} cached · {g('hearth_kv_blocks_total')} total</dd>
          </dl>
        </section>
      </div>
      <section class="card" aria-labelledby="logs-title">
        <h2 id="logs-title">Recent log <span class="muted">(newest first)</span></h2>
        <div class="logs" role="log" aria-label="Server log" tabIndex={0}>
          {[...logs].reverse().map((l) => <div key={l.seq}><time>{l.time.slice(11, 19)}</time> {l.text}</div>)}
        </div>
      </section>
    </main>
  );
}
