// The web UI end to end, as a new user would use it, in headless Chromium against real
// `hearth serve` processes: sign in with the API key, pull a model from a local registry (a
// second hearth serve) and watch its progress, chat and see tokens stream, stop mid-stream,
// regenerate, edit and resend, switch model, change a parameter and see it applied, reload the
// page and find the conversation, presets and load settings kept across a server restart,
// Hugging Face discovery (a fake HF API), import a GGUF by upload, and the bad-input cases (a
// name that doesn't exist, a malformed upload, the server going away mid-stream, a wrong key).
// axe-core checks every view; a screenshot of every view lands in $HEARTH_UI_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import {
  startServer, makeStore, startFakeHf, startSlowProxy, launchBrowser, axeViolations, screenshot, tempDir, prerequisites, modelPath,
} from './harness.mjs';

const KEY = 'e2e-secret-key';
const missing = prerequisites();
const skip = missing.length ? `missing: ${missing.join(', ')}` : false;

let registry; // a hearth serve whose store has `stories`: the local registry to pull from
let server; // the UI's hearth serve (empty store, API key)
let hf;
let browser;
let page;
let dataDir;
let storeDir;
// A 16k context so a schema-forced reply (longReply) streams for seconds: stories260K writes
// thousands of tokens a second and ends its stories on its own.
const serverArgs = () => ['--api-key', KEY, '--data-dir', dataDir, '--ctx', '16384', '--parallel', '2', '--threads', '2'];
const LONG_SCHEMA = JSON.stringify({ type: 'array', items: { type: 'string', minLength: 9000 }, minItems: 3 });
const serverEnv = () => ({ HEARTH_MODELS: storeDir, HEARTH_HF_URL: hf.url, HEARTH_LOG: 'info' });

// The API as a script sees it (with the key).
async function api(p, init = {}) {
  const res = await fetch(server.url + p, {
    ...init,
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) },
  });
  const text = await res.text();
  try { return { status: res.status, body: JSON.parse(text) }; } catch { return { status: res.status, body: text }; }
}

async function checkA11y(name) {
  const v = await axeViolations(page);
  assert.deepEqual(v, [], `axe on ${name}:\n${v.join('\n')}`);
}

async function view(name) {
  await page.getByRole('navigation').getByRole('link', { name, exact: true }).click();
}

const messageBox = () => page.getByRole('textbox', { name: 'Message', exact: true });
// Forces a reply of thousands of tokens through the UI's own JSON-schema field.
async function longReply(on) {
  await page.getByLabel('Response format').selectOption(on ? 'schema' : 'text');
  if (on) await page.getByLabel('JSON schema', { exact: true }).fill(LONG_SCHEMA);
  await page.getByLabel('Max tokens').fill(on ? '8000' : '40');
}
// Runs `action` (which sends, regenerates or resends) and waits until that reply has ended and
// been saved: the chat counts finished replies in data-replies and is idle again.
async function replyTo(action) {
  const before = Number(await page.locator('main[data-replies]').getAttribute('data-replies'));
  await action();
  await page.waitForFunction((n) => {
    const main = document.querySelector('main[data-replies]');
    return main && Number(main.dataset.replies) > n && main.dataset.busy === 'false';
  }, before);
}
async function send(text) {
  await replyTo(async () => {
    await messageBox().fill(text);
    await page.getByRole('button', { name: 'Send' }).click();
  });
}
const lastAssistant = () => page.locator('[data-role="assistant"]').last();

before(async () => {
  if (skip) return;
  const root = tempDir('hearth-ui-e2e-');
  const regStore = makeStore(path.join(root, 'registry'), 'stories');
  registry = await startServer([], { HEARTH_MODELS: regStore });
  hf = await startFakeHf();
  dataDir = path.join(root, 'data');
  storeDir = path.join(root, 'store');
  server = await startServer(serverArgs(), serverEnv());
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(Number(process.env.HEARTH_UI_TIMEOUT_MS ?? 20000));
});

after(async () => {
  await browser?.close();
  if (server) assert.equal(await server.stop(), 0, 'hearth serve exits 0 on SIGTERM');
  await registry?.stop();
  hf?.close();
});

test('first load: the bundle is small, a wrong key is refused, the right one signs in', { skip }, async () => {
  const sizes = { js: 0, css: 0 };
  page.on('response', async (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith('/assets/')) return;
    const body = await r.body().catch(() => Buffer.alloc(0));
    const kind = u.pathname.endsWith('.css') ? 'css' : u.pathname.endsWith('.js') ? 'js' : null;
    if (kind) sizes[kind] += gzipSync(body, { level: 6 }).length;
  });
  await page.goto(server.url + '/');
  await page.getByLabel('API key').fill('wrong-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(/wrong API key|missing or wrong/i).first().waitFor();
  await screenshot(page, '01-login');
  await checkA11y('login');
  await page.getByLabel('API key').fill(KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation').waitFor();
  const total = sizes.js + sizes.css;
  console.log(`first load: ${(sizes.js / 1024).toFixed(1)} KiB JS + ${(sizes.css / 1024).toFixed(1)} KiB CSS gzip`);
  assert.ok(total > 0 && total <= 250 * 1024, `first load is ${total} compressed bytes (budget 250 KB)`);
});

test('library: pause a download, resume it, also after a page reload', { skip }, async () => {
  // 1.2 MB at 150 KB/s: about 8 s, long enough to pause, reload and resume.
  // First download of the suite: a blob already in the store would not be downloaded again.
  const slow = await startSlowProxy(registry.url, 150_000);
  await view('Library');
  await page.getByRole('checkbox', { name: /Insecure/ }).check();
  try {
    const name = `${slow.host}/library/stories:latest`;
    await page.getByLabel('Model name').fill(name);
    await page.getByRole('button', { name: 'Download' }).click();
    const row = page.locator('li.download', { hasText: name });
    await row.getByRole('button', { name: 'Pause' }).waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('li.download progress')].some((p) => p.value > 0));
    await row.getByRole('button', { name: 'Pause' }).click();
    await row.getByText('Paused').waitFor();
    await screenshot(page, '02b-download-paused');
    // The page goes away and comes back: the download is still listed, paused.
    await page.reload();
    await row.getByRole('button', { name: 'Resume' }).click();
    await row.getByText(/success|complete/i).waitFor({ timeout: 60000 });
    const tags = await api('/api/tags');
    assert.ok(tags.body.models.some((m) => m.name === name), JSON.stringify(tags.body));
    // Resumed, not restarted: the server asked the registry for the rest of the partial blob.
    assert.ok(slow.ranges.some((r) => /^bytes=[1-9]/.test(r)), `Range requests: ${slow.ranges.join(', ')}`);
  } finally {
    slow.close();
  }
});

test('library: a missing name is a clear error; a pull from a local registry shows progress', { skip }, async () => {
  await view('Library');
  await page.getByLabel('Model name').fill('no-such-model-anywhere');
  await page.getByRole('checkbox', { name: /Insecure/ }).check();
  // Point "no-such-model" at the local registry so the failure is a 404, not the internet.
  const host = new URL(registry.url).host;
  await page.getByLabel('Model name').fill(`${host}/library/no-such-model:latest`);
  await page.getByRole('button', { name: 'Download' }).click();
  await page.getByText(/not found|does not exist|404/i).first().waitFor();
  await page.getByLabel('Model name').fill(`${host}/library/stories:latest`);
  await page.getByRole('button', { name: 'Download' }).click();
  await page.getByRole('progressbar').first().waitFor();
  await page.getByText(/success|complete/i).first().waitFor();
  const tags = await api('/api/tags');
  assert.ok(tags.body.models.some((m) => m.name === `${host}/library/stories:latest`), JSON.stringify(tags.body));
  await page.getByText(`${host}/library/stories:latest`).first().waitFor();
  await screenshot(page, '02-library');
  await checkA11y('library');
});

test('library: copy a model; import a GGUF by upload; a malformed upload is refused', { skip }, async () => {
  const host = new URL(registry.url).host;
  page.once('dialog', (d) => d.accept('stories-copy'));
  await page.getByRole('button', { name: 'Copy' }).first().click();
  await page.getByText('stories-copy').first().waitFor();
  const bad = path.join(tempDir('hearth-bad-'), 'broken.gguf');
  writeFileSync(bad, 'GGUF this is not a model');
  await page.getByLabel('Name for imported model').fill('broken');
  await page.getByLabel('Import GGUF').setInputFiles(bad);
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  await page.getByText(/error|invalid|not a|truncated|bad/i).first().waitFor();
  await page.getByLabel('Name for imported model').fill('imported');
  await page.getByLabel('Import GGUF').setInputFiles(modelPath);
  await page.getByRole('button', { name: 'Import', exact: true }).click();
  await page.getByText('Imported.').waitFor();
  const tags = await api('/api/tags');
  const names = tags.body.models.map((m) => m.name);
  assert.ok(names.includes('stories-copy:latest') && names.includes('imported:latest'), names.join(','));
  assert.ok(names.includes(`${host}/library/stories:latest`));
});

test('chat: tokens stream, stop keeps the partial reply, stats are shown', { skip }, async () => {
  await view('Chat');
  await page.getByRole('button', { name: 'New chat' }).click();
  await page.getByLabel('Model', { exact: true }).selectOption('stories-copy:latest');
  await longReply(true);
  await messageBox().fill('Once upon a time');
  await page.getByRole('button', { name: 'Send' }).click();
  // Streaming: the Stop button is there and the reply grows.
  await page.getByRole('button', { name: 'Stop' }).waitFor();
  await lastAssistant().getByTestId('message-content').filter({ hasText: /\w{3,}/ }).waitFor();
  const early = (await lastAssistant().innerText()).length;
  await page.waitForTimeout(150);
  await replyTo(() => page.getByRole('button', { name: 'Stop' }).click());
  const partial = await lastAssistant().innerText();
  assert.ok(partial.length >= early, 'the partial reply is kept');
  await screenshot(page, '03-chat-stopped');
  // A full reply with stats.
  await longReply(false);
  await send('Lily and Tom');
  const stats = await page.getByTestId('reply-stats').last().innerText();
  assert.match(stats, /tok\/s/);
  assert.match(stats, /TTFT/);
  await checkA11y('chat');
  const convs = await api('/api/conversations');
  assert.equal(convs.body.conversations.length, 1);
  const conv = await api(`/api/conversations/${convs.body.conversations[0].id}`);
  assert.equal(conv.body.messages.length, 4, JSON.stringify(conv.body.messages.map((m) => m.role)));
  assert.ok(conv.body.messages[1].content.length > 0);
});

test('chat: a seeded parameter change is applied and changes the reply; regenerate; edit', { skip }, async () => {
  await page.getByLabel('Temperature').fill('1.5');
  await page.getByLabel('Seed').fill('1');
  await page.getByLabel('Max tokens').fill('24');
  await send('The dog');
  const first = await lastAssistant().locator('.content, [data-testid="message-content"]').first().innerText();
  assert.match(await page.getByTestId('applied-options').last().innerText(), /seed 1/);
  await page.getByLabel('Seed').fill('2');
  await replyTo(() => lastAssistant().getByRole('button', { name: 'Regenerate' }).click());
  await page.getByTestId('applied-options').last().filter({ hasText: /seed 2/ }).waitFor();
  const second = await lastAssistant().locator('.content, [data-testid="message-content"]').first().innerText();
  assert.notEqual(first, second, 'a different seed gives a different reply');
  // Same seed again: the same reply (the parameter really is what the server used).
  await page.getByLabel('Seed').fill('1');
  await replyTo(() => lastAssistant().getByRole('button', { name: 'Regenerate' }).click());
  const again = await lastAssistant().locator('.content, [data-testid="message-content"]').first().innerText();
  assert.equal(again, first, 'seed 1 again reproduces the first reply');
  // Edit the last user message and resend: the reply after it is replaced.
  await page.locator('[data-role="user"]').last().getByRole('button', { name: 'Edit' }).click();
  await page.getByLabel('Edit message').fill('The cat');
  await replyTo(() => page.getByRole('button', { name: 'Save & resend' }).click());
  await page.locator('[data-role="user"]').last().filter({ hasText: 'The cat' }).waitFor();
  const id = (await api('/api/conversations')).body.conversations[0].id;
  const conv = await api(`/api/conversations/${id}`);
  const users = conv.body.messages.filter((m) => m.role === 'user').map((m) => m.content);
  assert.deepEqual(users, ['Once upon a time', 'Lily and Tom', 'The cat']);
  await screenshot(page, '04-chat-params');
});

test('chat: switch model mid-conversation; presets', { skip }, async () => {
  await page.getByLabel('Model', { exact: true }).selectOption('imported:latest');
  await send('Next');
  const id = (await api('/api/conversations')).body.conversations[0].id;
  const msgs = (await api(`/api/conversations/${id}`)).body.messages.filter((m) => m.role === 'assistant');
  assert.equal(msgs.at(-1).model, 'imported:latest');
  assert.equal(msgs[0].model, 'stories-copy:latest');
  await page.getByLabel('System prompt').fill('You tell stories about dragons.');
  await page.getByRole('button', { name: 'Save preset' }).click();
  await page.getByLabel('Preset name').fill('Dragons');
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByLabel('Preset').locator('option', { hasText: 'Dragons' }).waitFor({ state: 'attached' });
  const presets = await api('/api/presets');
  assert.equal(presets.body.presets[0].name, 'Dragons');
  assert.equal(presets.body.presets[0].system, 'You tell stories about dragons.');
});

test('load settings: saved per model, reload with a visible state, applied', { skip }, async () => {
  await view('Library');
  const row = page.locator('[data-model="stories-copy:latest"]');
  await row.getByRole('button', { name: 'Details' }).click();
  await page.getByLabel('Context length').fill('256');
  await page.getByLabel('Keep alive').fill('-1');
  assert.ok(await page.getByLabel('GPU layers').isDisabled(), 'no GPU: the field is disabled');
  await page.getByRole('button', { name: 'Save load settings' }).click();
  await page.getByText(/Reloading model/).first().waitFor({ state: 'attached' }).catch(() => {});
  await page.getByText(/Loaded/).first().waitFor();
  const ps = await api('/api/ps');
  const m = ps.body.models.find((x) => x.name === 'stories-copy:latest');
  assert.ok(m, JSON.stringify(ps.body));
  assert.equal(m.context_length, 256);
  await screenshot(page, '05-load-settings');
  await checkA11y('model details');
});

test('discover: Hugging Face search lists quantizations and whether they fit', { skip }, async () => {
  await view('Discover');
  await page.getByLabel('Search Hugging Face').fill('tinystories');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByText('acme/TinyStories-GGUF').click();
  await page.getByText('TinyStories-Q8_0.gguf').first().waitFor();
  await page.getByText(/Too large/).first().waitFor();
  await page.getByText(/Fits/).first().waitFor();
  await screenshot(page, '06-discover');
  await checkA11y('discover');
});

test('server view: loaded models, hardware, metrics, logs; unload', { skip }, async () => {
  await view('Server');
  await page.getByText('stories-copy:latest').first().waitFor();
  await page.getByText(/avx|neon|scalar/i).first().waitFor();
  await page.getByText(/hearth serve: .* GET /).first().waitFor();
  await screenshot(page, '07-server');
  await checkA11y('server');
  await page.getByRole('button', { name: 'Unload stories-copy:latest' }).click();
  for (let i = 0; i < 50; ++i) {
    const ps = await api('/api/ps');
    if (!ps.body.models.some((x) => x.name === 'stories-copy:latest')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(!(await api('/api/ps')).body.models.some((x) => x.name === 'stories-copy:latest'));
});

test('settings: themes; the UI works at a phone width', { skip }, async () => {
  await view('Settings');
  await page.getByLabel('Theme').selectOption({ label: 'Dark' });
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await screenshot(page, '08-settings-dark');
  await checkA11y('settings (dark)');
  await view('Chat');
  await checkA11y('chat (dark)');
  await screenshot(page, '09-chat-dark');
  await page.setViewportSize({ width: 375, height: 740 });
  await messageBox().waitFor();
  await screenshot(page, '10-chat-phone');
  await checkA11y('chat (phone)');
  await page.setViewportSize({ width: 1280, height: 800 });
  await view('Settings');
  await page.getByLabel('Theme').selectOption({ label: 'Light' });
});

test('the server going away mid-stream: an error on the message, nothing lost; restart keeps everything', { skip }, async () => {
  await view('Chat');
  await page.getByLabel('Model', { exact: true }).selectOption('stories-copy:latest');
  await longReply(true);
  await page.getByLabel('Seed').fill('');
  await messageBox().fill('A long story please');
  await page.getByRole('button', { name: 'Send' }).click();
  // Kill the server once tokens are arriving (the user message is saved by then).
  await lastAssistant().getByTestId('message-content').filter({ hasText: /\w{3,}/ }).waitFor();
  await replyTo(() => server.stop('SIGKILL'));
  await lastAssistant().getByText(/error|failed|network|lost/i).first().waitFor();
  await screenshot(page, '11-server-gone');
  // Restart on the same port and data dir; the page reloads (same origin: the key is kept).
  server = await startServer(serverArgs(), serverEnv(), server.port);
  await page.reload();
  await view('Chat');
  const title = (await api('/api/conversations')).body.conversations[0].title;
  await page.getByText(title).first().click();
  // The newest messages are on screen (older ones are virtualized away): the one sent before the
  // crash and the failed reply, which the browser kept and now saves.
  await page.locator('[data-role="user"]').filter({ hasText: 'A long story please' }).first().waitFor();
  await lastAssistant().getByText(/connection to the server was lost/).waitFor();
  const id = (await api('/api/conversations')).body.conversations[0].id;
  for (let i = 0; i < 50; ++i) {
    const msgs = (await api(`/api/conversations/${id}`)).body.messages;
    if (msgs.at(-1)?.role === 'assistant') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const presets = await api('/api/presets');
  assert.equal(presets.body.presets[0].name, 'Dragons');
  const settings = await api('/api/model-settings');
  assert.equal(settings.body.settings['stories-copy:latest'].num_ctx, 256);
  const conv = (await api(`/api/conversations/${(await api('/api/conversations')).body.conversations[0].id}`)).body;
  assert.equal(conv.messages.at(-2).content, 'A long story please', 'the message sent before the crash was kept');
  assert.match(conv.messages.at(-1).error ?? '', /lost/, 'the failed reply was saved once the server was back');
  await screenshot(page, '12-after-restart');
});
