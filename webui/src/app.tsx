// The shell: login gate (any 401 shows it), navigation landmark, the current view, global keys.
import { useEffect } from 'preact/hooks';
import { authError, apiKey } from './api';
import { route } from './router';
import { refreshModels } from './models';
import './theme';
import { Login } from './views/Login';
import { Chat } from './views/Chat';
import { Library } from './views/Library';
import { Discover } from './views/Discover';
import { ServerView } from './views/ServerView';
import { Settings } from './views/Settings';

const NAV: [string, string][] = [
  ['chat', 'Chat'],
  ['library', 'Library'],
  ['discover', 'Discover'],
  ['server', 'Server'],
  ['settings', 'Settings'],
];

export function App() {
  // Re-read the models whenever the key changes (sign-in).
  const key = apiKey.value;
  useEffect(() => {
    void refreshModels();
  }, [key]);

  if (authError.value !== null) return <Login message={authError.value} />;
  const r = route.value;
  return (
    <div class="shell">
      <header class="topbar">
        <span class="brand" aria-hidden="true">
          <img src="./favicon.svg" alt="" width="22" height="22" /> hearth
        </span>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([view, label]) => (
              <li key={view}>
                <a href={`#/${view}`} aria-current={r.view === view ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      {r.view === 'chat' && <Chat id={r.id} />}
      {r.view === 'library' && <Library />}
      {r.view === 'discover' && <Discover />}
      {r.view === 'server' && <ServerView />}
      {r.view === 'settings' && <Settings />}
    </div>
  );
}
