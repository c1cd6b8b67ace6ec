// Import a .gguf from this computer: hash it in the browser (streamed, so any size works and no
// secure context is needed), upload it to /api/blobs/sha256:HEX (progress from XHR upload events),
// then /api/create names it. A file the server cannot read as GGUF is refused with its reason.
import { useState } from 'preact/hooks';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { apiKey, ApiError, streamNdjson } from '../api';
import { refreshModels } from '../models';

async function hashFile(file: File, onProgress: (f: number) => void): Promise<string> {
  const h = sha256.create();
  const chunk = 8 << 20;
  for (let off = 0; off < file.size; off += chunk) {
    h.update(new Uint8Array(await file.slice(off, off + chunk).arrayBuffer()));
    onProgress(Math.min(1, (off + chunk) / file.size));
  }
  return bytesToHex(h.digest());
}

function upload(file: File, digest: string, onProgress: (f: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/blobs/sha256:${digest}`);
    if (apiKey.value) xhr.setRequestHeader('Authorization', `Bearer ${apiKey.value}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      let msg = `HTTP ${xhr.status}`;
      try { msg = JSON.parse(xhr.responseText).error ?? msg; } catch { /* keep the status */ }
      reject(new ApiError(msg, xhr.status));
    };
    xhr.onerror = () => reject(new ApiError('the upload failed (network error)', 0));
    xhr.send(file);
  });
}

export function ImportGguf() {
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState('');
  const [phase, setPhase] = useState<{ text: string; progress?: number; error?: boolean } | null>(null);
  const busy = phase !== null && !phase.error && phase.text !== 'Imported.';

  const run = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    const model = name.trim() || file.name.replace(/\.gguf$/i, '').toLowerCase().replace(/[^a-z0-9._-]+/g, '-');
    try {
      setPhase({ text: 'Hashing…', progress: 0 });
      const digest = await hashFile(file, (p) => setPhase({ text: 'Hashing…', progress: p }));
      setPhase({ text: 'Uploading…', progress: 0 });
      await upload(file, digest, (p) => setPhase({ text: 'Uploading…', progress: p }));
      setPhase({ text: 'Creating the model…' });
      await streamNdjson('/api/create', { model, files: { [file.name]: `sha256:${digest}` }, stream: true }, () => {});
      setPhase({ text: 'Imported.' });
      await refreshModels();
    } catch (err) {
      setPhase({ text: `Import failed: ${(err as Error).message}`, error: true });
    }
  };
  return (
    <form class="card" onSubmit={run} aria-labelledby="import-title">
      <h2 id="import-title">Import a GGUF file</h2>
      <div class="row wrap">
        <div class="field">
          <label for="import-file">Import GGUF</label>
          <input id="import-file" type="file" accept=".gguf" onChange={(e) => setFile(e.currentTarget.files?.[0] ?? null)} />
        </div>
        <div class="field">
          <label for="import-name">Name for imported model</label>
          <input id="import-name" value={name} placeholder="e.g. my-model" onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <button type="submit" class="primary" disabled={!file || busy}>Import</button>
      </div>
      {file && file.size > 1 << 30 && <p class="muted">Large file: hashing and uploading take a while.</p>}
      {phase && (
        <p class={phase.error ? 'error' : 'note'} role={phase.error ? 'alert' : 'status'}>
          {phase.text}{' '}
          {phase.progress !== undefined && !phase.error && <progress value={phase.progress} max={1} aria-label={phase.text} />}
        </p>
      )}
    </form>
  );
}
