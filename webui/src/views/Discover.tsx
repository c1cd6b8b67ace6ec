// Search Hugging Face for GGUF repositories (through the server, only when asked) and download a
// quantization that fits this machine.
import { useState } from 'preact/hooks';
import { formatBytes, getJson } from '../api';
import { startDownload } from '../downloads';
import { navigate } from '../router';

interface Repo { id: string; downloads: number; likes: number; updated_at: string }
interface RepoFile { name: string; size: number; quant: string; fits: boolean; pull?: string; unsupported?: string }

export function Discover() {
  const [q, setQ] = useState('');
  const [repos, setRepos] = useState<Repo[] | null>(null);
  const [repo, setRepo] = useState<string | null>(null);
  const [files, setFiles] = useState<RepoFile[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const search = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setRepo(null);
    setFiles(null);
    try {
      setRepos((await getJson<{ models: Repo[] }>(`/api/hf/search?q=${encodeURIComponent(q.trim())}`)).models);
    } catch (err) {
      setError((err as Error).message);
      setRepos(null);
    } finally {
      setBusy(false);
    }
  };
  const open = async (id: string) => {
    setRepo(id);
    setFiles(null);
    setError(null);
    try {
      setFiles((await getJson<{ files: RepoFile[] }>(`/api/hf/files?repo=${encodeURIComponent(id)}`)).files);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return (
    <main class="page" aria-labelledby="disc-title">
      <h1 id="disc-title">Discover</h1>
      <p class="muted">Searches Hugging Face for GGUF models. Nothing is sent anywhere until you search.</p>
      <form class="row card" onSubmit={search} role="search">
        <label for="hf-q" class="sr-only">Search Hugging Face</label>
        <input id="hf-q" class="grow" value={q} placeholder="Search Hugging Face (e.g. qwen3 gguf)" onInput={(e) => setQ(e.currentTarget.value)} />
        <button type="submit" class="primary" disabled={!q.trim() || busy}>{busy ? 'Searching…' : 'Search'}</button>
      </form>
      {error && <p class="error banner" role="alert">{error}</p>}
      <div class="discover">
        {repos && (
          <section class="card" aria-labelledby="results-title">
            <h2 id="results-title">Results</h2>
            {repos.length === 0 && <p class="muted">No GGUF repositories match.</p>}
            <ul class="repo-list">
              {repos.map((r) => (
                <li key={r.id}>
                  <button type="button" class={`repo ${repo === r.id ? 'active' : ''}`} aria-pressed={repo === r.id} onClick={() => void open(r.id)}>
                    <span class="repo-id">{r.id}</span>
                    <span class="muted">{r.downloads.toLocaleString()} downloads · {r.likes} likes</span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
        )}
        {repo && (
          <section class="card" aria-labelledby="files-title">
            <h2 id="files-title">{repo}</h2>
            {!files && !error && <p class="muted">Loading files…</p>}
            {files && files.length === 0 && <p class="muted">This repository has no GGUF files.</p>}
            {files && files.length > 0 && (
              <ul class="files">
                {files.map((f) => (
                  <li key={f.name} class="row">
                    <span class="grow"><code>{f.name}</code> <span class="muted">{f.quant}</span></span>
                    <span>{formatBytes(f.size)}</span>
                    <span class={`badge ${f.fits ? 'ok' : 'warn'}`}>{f.fits ? 'Fits in memory' : 'Too large'}</span>
                    {f.pull ? (
                      <button type="button" class="small" onClick={() => { startDownload(f.pull!, false); navigate('#/library'); }}>
                        Download<span class="sr-only"> {f.name}</span>
                      </button>
                    ) : (
                      <span class="muted">{f.unsupported ?? 'no quantization tag'}</span>
                    )}
                  </li>
                ))}
              </ul>
            )}
          </section>
        )}
      </div>
    </main>
  );
}
