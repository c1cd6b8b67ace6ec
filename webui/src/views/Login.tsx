// Shown when the server answers 401: the key is kept in this browser's localStorage.
import { useState } from 'preact/hooks';
import { authError, getJson, setApiKey } from '../api';

export function Login({ message }: { message: string }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setApiKey(key.trim());
    try {
      await getJson('/api/version');
      await getJson('/api/tags'); // /api/version may be open; this one needs the key
      authError.value = null;
    } catch (err) {
      setError((err as Error).message);
      authError.value = (err as Error).message;
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={submit} class="card">
        <h1>Sign in to hearth</h1>
        <p>This server needs its API key (the one given to <code>hearth serve --api-key</code>).</p>
        <label for="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="current-password" value={key}
          onInput={(e) => setKey(e.currentTarget.value)} autoFocus />
        <button type="submit" class="primary" disabled={busy || !key.trim()}>
          Sign in
        </button>
        {(error ?? (message && key === '' ? message : null)) && (
          <p class="error" role="alert">{error ?? message}</p>
        )}
      </form>
    </main>
  );
}
