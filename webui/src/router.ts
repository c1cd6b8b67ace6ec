// Hash routes (#/chat/12, #/library, ...): the server needs no fallback route for them.
import { signal } from '@preact/signals';

export interface Route {
  view: 'chat' | 'library' | 'discover' | 'server' | 'settings';
  id?: string;
}

function parse(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const view = parts[0];
  if (view === 'library' || view === 'discover' || view === 'server' || view === 'settings') return { view };
  return { view: 'chat', id: view === 'chat' ? parts[1] : undefined };
}

export const route = signal<Route>(parse(location.hash));
window.addEventListener('hashchange', () => {
  route.value = parse(location.hash);
});

export function navigate(hash: string) {
  if (location.hash !== hash) location.hash = hash;
}
