// Download by name with live progress per layer, pause / resume / cancel / retry.
import { useState } from 'preact/hooks';
import { formatBytes } from '../api';
import { cancelDownload, downloads, pauseDownload, startDownload, clearFinished, type Download } from '../downloads';

function Row({ d }: { d: Download }) {
  const total = d.layers.reduce((s, l) => s + l.total, 0);
  const done = d.layers.reduce((s, l) => s + l.completed, 0);
  return (
    <li class={`download ${d.state}`}>
      <div class="row">
        <strong class="grow">{d.name}</strong>
        <span class="muted">
          {d.state === 'running' ? d.status : d.state === 'paused' ? 'Paused' : d.state === 'done' ? 'Complete (success)' : 'Failed'}
          {total > 0 && ` · ${formatBytes(done)} / ${formatBytes(total)}`}
          {d.bytesPerSecond ? ` · ${formatBytes(d.bytesPerSecond)}/s` : ''}
        </span>
        {d.state === 'running' && <button type="button" class="small" onClick={() => pauseDownload(d.name)}>Pause</button>}
        {d.state === 'paused' && <button type="button" class="small" onClick={() => startDownload(d.name, d.insecure)}>Resume</button>}
        {d.state === 'error' && <button type="button" class="small" onClick={() => startDownload(d.name, d.insecure)}>Retry</button>}
        {d.state !== 'done' && <button type="button" class="small" onClick={() => cancelDownload(d.name)}>Cancel</button>}
      </div>
      {d.error && <p class="error" role="alert">{d.error}</p>}
      {d.layers.length > 0 && (
        <ul class="layers">
          {d.layers.map((l) => (
            <li key={l.digest}>
              <code>{l.digest.replace('sha256:', '').slice(0, 12)}</code>
              <progress value={l.completed} max={Math.max(1, l.total)} aria-label={`Layer ${l.digest.slice(7, 19)} of ${d.name}`} />
              <span class="muted">{formatBytes(l.completed)} / {formatBytes(l.total)}</span>
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

export function Downloads() {
  const [name, setName] = useState('');
  const [insecure, setInsecure] = useState(false);
  const list = downloads.value;
  return (
    <section class="card" aria-labelledby="dl-title">
      <h2 id="dl-title">Download a model</h2>
      <form class="row wrap" onSubmit={(e) => { e.preventDefault(); startDownload(name, insecure); setName(''); }}>
        <div class="field grow">
          <label for="dl-name">Model name</label>
          <input id="dl-name" value={name} placeholder="llama3.2:1b, hf.co/ORG/REPO:Q4_K_M, mirror:5000/library/model"
            onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="field check">
          <input id="dl-insecure" type="checkbox" checked={insecure} onChange={(e) => setInsecure(e.currentTarget.checked)} />
          <label for="dl-insecure">Insecure (HTTP)</label>
        </div>
        <button type="submit" class="primary" disabled={!name.trim()}>Download</button>
      </form>
      {list.length > 0 && (
        <>
          <ul class="downloads" aria-label="Downloads">{list.map((d) => <Row key={d.name} d={d} />)}</ul>
          {list.some((d) => d.state === 'done') && <button type="button" class="small" onClick={clearFinished}>Clear finished</button>}
        </>
      )}
    </section>
  );
}
