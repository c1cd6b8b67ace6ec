// Model downloads (POST /api/pull, streamed progress), shared by the Library and Discover views.
// Pause aborts the request: the server stops and keeps the partial blob, and Resume pulls again
// from where it stopped (the store resumes). Downloads not finished are kept in localStorage, so
// after a page reload or a server restart they come back as "paused".
import { signal } from '@preact/signals';
import { ApiError, streamNdjson } from './api';
import { refreshModels } from './models';

export interface Layer {
  digest: string;
  total: number;
  completed: number;
}
export type DownloadState = 'running' | 'paused' | 'done' | 'error';
export interface Download {
  name: string;
  insecure: boolean;
  state: DownloadState;
  status: string; // the server's last status line
  layers: Layer[];
  error?: string;
  bytesPerSecond?: number;
}

const STORAGE = 'hearth.downloads';
const controllers = new Map<string, AbortController>();

function load(): Download[] {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE) ?? '[]') as Download[];
    // Whatever was running when the page went away is paused now.
    return saved.map((d) => (d.state === 'running' ? { ...d, state: 'paused', status: 'paused' } : d));
  } catch {
    return [];
  }
}

export const downloads = signal<Download[]>(load());

function save() {
  const keep = downloads.value.filter((d) => d.state !== 'done');
  localStorage.setItem(STORAGE, JSON.stringify(keep));
}

function update(name: string, patch: Partial<Download>) {
  downloads.value = downloads.value.map((d) => (d.name === name ? { ...d, ...patch } : d));
  save();
}

export function startDownload(name: string, insecure: boolean) {
  name = name.trim();
  if (!name || controllers.has(name)) return;
  const existing = downloads.value.find((d) => d.name === name);
  const base: Download = existing
    ? { ...existing, state: 'running', status: 'starting', error: undefined, insecure }
    : { name, insecure, state: 'running', status: 'starting', layers: [] };
  downloads.value = [base, ...downloads.value.filter((d) => d.name !== name)];
  save();
  const ctrl = new AbortController();
  controllers.set(name, ctrl);
  let lastBytes = 0;
  let lastTime = performance.now();
  let layers = base.layers;
  streamNdjson(
    '/api/pull',
    { model: name, insecure, stream: true },
    (line) => {
      const status = String(line.status ?? '');
      const digest = typeof line.digest === 'string' ? line.digest : '';
      const patch: Partial<Download> = { status };
      if (digest && typeof line.total === 'number') {
        const layer = { digest, total: line.total, completed: Number(line.completed ?? 0) };
        layers = layers.some((l) => l.digest === digest)
          ? layers.map((l) => (l.digest === digest ? layer : l))
          : [...layers, layer];
        patch.layers = layers;
        const now = performance.now();
        const bytes = layers.reduce((s, l) => s + l.completed, 0);
        if (now - lastTime > 500) {
          patch.bytesPerSecond = ((bytes - lastBytes) * 1000) / (now - lastTime);
          lastBytes = bytes;
          lastTime = now;
        }
      }
      update(name, patch);
    },
    ctrl.signal,
  )
    .then(() => {
      update(name, { state: 'done', status: 'success', bytesPerSecond: undefined });
      void refreshModels();
    })
    .catch((e: Error) => {
      if (e.name === 'AbortError') return; // pause / cancel set the state already
      update(name, { state: 'error', error: e instanceof ApiError ? e.message : String(e.message) });
    })
    .finally(() => controllers.delete(name));
}

export function pauseDownload(name: string) {
  controllers.get(name)?.abort();
  controllers.delete(name);
  update(name, { state: 'paused', status: 'paused', bytesPerSecond: undefined });
}

export function cancelDownload(name: string) {
  controllers.get(name)?.abort();
  controllers.delete(name);
  downloads.value = downloads.value.filter((d) => d.name !== name);
  save();
}

export function clearFinished() {
  downloads.value = downloads.value.filter((d) => d.state !== 'done');
  save();
}
