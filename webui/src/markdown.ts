// Markdown for model output: markdown-it with raw HTML off (model text can never inject markup or
// script; links are checked by markdown-it's validateLink), highlight.js core with the languages
// people ask about most, and a "Copy code" button on every code block (handled by delegation in
// MessageList). Each distinct text is rendered once (memo), so scrolling never re-renders Markdown.
import MarkdownIt from 'markdown-it';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import python from 'highlight.js/lib/languages/python';
import javascript from 'highlight.js/lib/languages/javascript';
import typescript from 'highlight.js/lib/languages/typescript';
import json from 'highlight.js/lib/languages/json';
import rust from 'highlight.js/lib/languages/rust';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import sql from 'highlight.js/lib/languages/sql';
import yaml from 'highlight.js/lib/languages/yaml';
import xml from 'highlight.js/lib/languages/xml';
import markdown from 'highlight.js/lib/languages/markdown';

const langs: Record<string, Parameters<typeof hljs.registerLanguage>[1]> = {
  bash, c, cpp, python, javascript, typescript, json, rust, go, java, sql, yaml, xml, markdown,
};
for (const [name, lang] of Object.entries(langs)) hljs.registerLanguage(name, lang);
hljs.registerAliases(['sh', 'shell', 'zsh'], { languageName: 'bash' });
hljs.registerAliases(['py'], { languageName: 'python' });
hljs.registerAliases(['js', 'jsx', 'mjs'], { languageName: 'javascript' });
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' });
hljs.registerAliases(['html', 'svg'], { languageName: 'xml' });
hljs.registerAliases(['c++', 'h', 'hpp', 'cc'], { languageName: 'cpp' });
hljs.registerAliases(['rs'], { languageName: 'rust' });
hljs.registerAliases(['yml'], { languageName: 'yaml' });
hljs.registerAliases(['md'], { languageName: 'markdown' });

const md = new MarkdownIt({ html: false, linkify: true, breaks: false });

// Code blocks: highlighted, with the language shown and a copy button (our own wrapper, so the
// fence rule is replaced rather than markdown-it's highlight hook, which always adds <pre>).
md.renderer.rules.fence = (tokens, idx) => {
  const token = tokens[idx];
  const lang = token.info.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  const code = token.content;
  const body =
    lang && hljs.getLanguage(lang)
      ? hljs.highlight(code, { language: lang, ignoreIllegals: true }).value
      : md.utils.escapeHtml(code);
  const label = lang ? `<span class="code-lang">${md.utils.escapeHtml(lang)}</span>` : '';
  return `<div class="code">${label}<button type="button" class="copy-code" data-copy-code>Copy code</button><pre><code class="hljs">${body}</code></pre></div>\n`;
};

// Links open in a new tab, without handing this page to the target.
const defaultLinkOpen = md.renderer.rules.link_open ?? ((t, i, o, _e, s) => s.renderToken(t, i, o));
md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx].attrSet('target', '_blank');
  tokens[idx].attrSet('rel', 'noopener noreferrer');
  return defaultLinkOpen(tokens, idx, options, env, self);
};

const cache = new Map<string, string>();
export function renderMarkdown(text: string): string {
  const hit = cache.get(text);
  if (hit !== undefined) return hit;
  const html = md.render(text);
  if (cache.size > 3000) cache.delete(cache.keys().next().value as string);
  cache.set(text, html);
  return html;
}
