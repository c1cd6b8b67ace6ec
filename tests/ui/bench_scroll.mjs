// Benchmark: a 1,000-message conversation in the web UI (headless Chromium). Reports the time from
// opening the conversation to its messages on screen, the frame rate while scrolling it from the
// bottom to the top and back (requestAnimationFrame timestamps: frames per second, the 95th
// percentile and worst frame), Chromium's own performance metrics over the scroll (layout and
// script time, from the DevTools protocol), and the compressed size of the first load.
//   node tests/ui/bench_scroll.mjs [--messages 1000] [--json out.json]
// Targets (issue #16): render < 1 s, scrolling >= 50 fps, first load <= 250 KB compressed.
import { gzipSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { startServer, launchBrowser, prerequisites, tempDir, modelPath } from './harness.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const nMessages = Number(opt('--messages', '1000'));
const jsonOut = opt('--json', null);

const missing = prerequisites();
if (missing.length) { console.error(`bench_scroll: missing ${missing.join(', ')}`); process.exit(77); }

// Messages like real chats: paragraphs, lists, code blocks of different lengths.
function message(i) {
  if (i % 2 === 0) return { role: 'user', content: `Question ${i}: how do I ${['sort a list', 'read a file', 'parse JSON', 'open a socket'][i % 4]} in ${['Python', 'C++', 'Rust', 'Go'][i % 4]}?` };
  const code = ['```python\nitems = sorted(items, key=lambda x: x.name)\nfor it in items:\n    print(it)\n```',
    '```cpp\n#include <vector>\nint main() {\n  std::vector<int> v{3, 1, 2};\n  std::sort(v.begin(), v.end());\n}\n```',
    '```rust\nfn main() {\n    let mut v = vec![3, 1, 2];\n    v.sort();\n    println!("{:?}", v);\n}\n```'][i % 3];
  const paras = 1 + (i % 4);
  let text = `Here is **answer ${i}**. `;
  for (let p = 0; p < paras; ++p) text += 'This paragraph explains the idea in a few sentences so the message has a realistic length, with `inline code` and a [link](https://example.com). ';
  text += `\n\n- first point\n- second point\n\n${code}\n`;
  return { role: 'assistant', content: text, model: 'stories:latest', stats: { eval_count: 40, tokens_per_second: 123.4, ttft_ms: 80 } };
}

const dataDir = tempDir('hearth-ui-bench-');
const server = await startServer(['--model', `stories=${modelPath}`, '--data-dir', dataDir], { HEARTH_MODELS: `${dataDir}/models` });
const browser = await launchBrowser();
try {
  const messages = Array.from({ length: nMessages }, (_, i) => message(i));
  const made = await (await fetch(`${server.url}/api/conversations`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ title: 'Long conversation', model: 'stories:latest', messages }),
  })).json();

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('crash', () => console.error('bench_scroll: the page crashed'));
  page.on('pageerror', (e) => console.error('bench_scroll: page error:', e.message));
  let jsBytes = 0; let cssBytes = 0;
  page.on('response', async (r) => {
    const p = new URL(r.url()).pathname;
    if (!p.startsWith('/assets/')) return;
    const b = await r.body().catch(() => Buffer.alloc(0));
    if (p.endsWith('.js')) jsBytes += gzipSync(b).length;
    if (p.endsWith('.css')) cssBytes += gzipSync(b).length;
  });
  await page.goto(`${server.url}/#/chat`);
  await page.getByLabel('Message').waitFor();
  // Open the conversation: time until its last message is on screen.
  const t0 = Date.now();
  await page.goto(`${server.url}/#/chat/${made.id}`);
  await page.getByText(`answer ${nMessages - 1}`, { exact: false }).first().waitFor({ timeout: 30000 });
  const renderMs = Date.now() - t0;
  const rendered = await page.locator('[data-role]').count();

  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const before = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  // Scroll the list to the top and back at 160 px per frame (a fast flick: every frame brings new
  // messages into the DOM), timing every frame.
  const frames = await page.evaluate(async () => {
    const list = document.querySelector('[data-testid="message-list"]');
    if (!list) throw new Error('no [data-testid="message-list"]');
    const times = [];
    const step = (dir) => new Promise((resolve) => {
      const tick = (t) => {
        times.push(t);
        list.scrollTop += dir * 160;
        const done = dir < 0 ? list.scrollTop <= 0 : list.scrollTop + list.clientHeight >= list.scrollHeight - 1;
        if (done || times.length > 20000) resolve(); else requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    await step(-1);
    await step(1);
    return times;
  });
  const after = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  const dts = frames.slice(1).map((t, i) => t - frames[i]).sort((a, b) => a - b);
  const seconds = (frames.at(-1) - frames[0]) / 1000;
  const result = {
    date: new Date().toISOString().slice(0, 10),
    cpu: cpus()[0]?.model ?? 'unknown',
    messages: nMessages,
    rendered_elements: rendered,
    render_ms: renderMs,
    scroll_frames: frames.length,
    scroll_fps: +(frames.length / seconds).toFixed(1),
    frame_p95_ms: +dts[Math.floor(dts.length * 0.95)].toFixed(1),
    frame_max_ms: +dts.at(-1).toFixed(1),
    layout_ms: +((after.LayoutDuration - before.LayoutDuration) * 1000).toFixed(0),
    script_ms: +((after.ScriptDuration - before.ScriptDuration) * 1000).toFixed(0),
    first_load_js_gzip_kib: +(jsBytes / 1024).toFixed(1),
    first_load_css_gzip_kib: +(cssBytes / 1024).toFixed(1),
  };
  console.log(JSON.stringify(result, null, 2));
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2));
  const ok = result.render_ms < 1000 && result.scroll_fps >= 50 && jsBytes + cssBytes <= 250 * 1024;
  console.log(ok ? 'bench_scroll: within targets' : 'bench_scroll: OUTSIDE targets (render < 1 s, >= 50 fps, <= 250 KB)');
} finally {
  await browser.close();
  await server.stop();
}
