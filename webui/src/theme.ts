// Light / dark / system theme: a data-theme attribute on <html> that the CSS variables follow.
import { signal, effect } from '@preact/signals';

export type Theme = 'system' | 'light' | 'dark';
export const theme = signal<Theme>((localStorage.getItem('hearth.theme') as Theme) ?? 'system');
const media = window.matchMedia('(prefers-color-scheme: dark)');

function apply() {
  const t = theme.value === 'system' ? (media.matches ? 'dark' : 'light') : theme.value;
  document.documentElement.dataset.theme = t;
}
effect(() => {
  localStorage.setItem('hearth.theme', theme.value);
  apply();
});
media.addEventListener('change', apply);
