// Appearance, the API key, and the keyboard shortcuts.
import { apiKey, setApiKey, authError } from '../api';
import { theme, type Theme } from '../theme';

export function Settings() {
  return (
    <main class="page" aria-labelledby="set-title">
      <h1 id="set-title">Settings</h1>
      <section class="card" aria-labelledby="look-title">
        <h2 id="look-title">Appearance</h2>
        <div class="field">
          <label for="theme">Theme</label>
          <select id="theme" value={theme.value} onChange={(e) => (theme.value = e.currentTarget.value as Theme)}>
            <option value="system">System</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
        </div>
      </section>
      <section class="card" aria-labelledby="key-title">
        <h2 id="key-title">API key</h2>
        <p>{apiKey.value ? 'This browser keeps an API key for this server.' : 'This server needs no API key.'}</p>
        {apiKey.value && (
          <button type="button" onClick={() => { setApiKey(''); authError.value = 'Signed out.'; }}>Sign out</button>
        )}
      </section>
      <section class="card" aria-labelledby="keys-title">
        <h2 id="keys-title">Keyboard shortcuts</h2>
        <dl class="kv">
          <dt><kbd>Enter</kbd></dt><dd>send (<kbd>Shift</kbd>+<kbd>Enter</kbd>: new line)</dd>
          <dt><kbd>Esc</kbd></dt><dd>stop the reply</dd>
          <dt><kbd>Ctrl</kbd>+<kbd>Shift</kbd>+<kbd>O</kbd></dt><dd>new chat</dd>
          <dt><kbd>/</kbd> or <kbd>Ctrl</kbd>+<kbd>L</kbd></dt><dd>focus the message box</dd>
        </dl>
      </section>
    </main>
  );
}
