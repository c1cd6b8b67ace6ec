// What the web UI's end-to-end tests and benchmark share: real `hearth serve` processes (one as the
// UI's server, one as a local registry to pull from), a fake Hugging Face API, Debian's headless
// Chromium through playwright-core, axe-core checks and screenshots.
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createServer } from 'node:http';
import path from 'node:path';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

export const here = path.dirname(fileURLToPath(import.meta.url));
export const bin = process.env.HEARTH_BIN ?? path.join(here, '../../build/release/hearth');
export const shared = process.env.HEARTH_SHARED ?? path.join(here, '../../../shared');
export const modelPath = path.join(shared, 'models/stories260K.gguf');
// Screenshots and reports land here (CTest passes a folder in the build tree).
export const artifacts = process.env.HEARTH_UI_ARTIFACTS ?? path.join(here, '../../build/ui-artifacts');
export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

export function tempDir(prefix) {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

// Starts `hearth serve` with `args` and `env` on `port` (0: a free one); resolves to
// { proc, url, port, stop() }.
export async function startServer(args, env, port = 0) {
  const proc = spawn(bin, ['serve', '--port', String(port), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let tail = '';
  proc.stderr.on('data', (d) => { tail = (tail + d.toString()).slice(-4000); });
  const lines = createInterface({ input: proc.stdout });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hearth serve did not start: ${tail}`)), 30000);
    proc.on('exit', (code) => reject(new Error(`hearth serve exited with ${code}: ${tail}`)));
    lines.on('line', (line) => {
      const m = line.match(/^hearth serve: listening on (http:\/\/\S+)$/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  const stop = async (signal = 'SIGTERM') => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    proc.kill(signal);
    return exited;
  };
  return { proc, url, port: Number(new URL(url).port), stop, tail: () => tail };
}

// A model store holding `name` (stories260K), made with `hearth create` as a user would.
export function makeStore(dir, name) {
  mkdirSync(dir, { recursive: true });
  const modelfile = path.join(dir, 'Modelfile');
  writeFileSync(modelfile, `FROM ${modelPath}\nPARAMETER temperature 0.8\n`);
  execFileSync(bin, ['create', name, '-f', modelfile], { env: { ...process.env, HEARTH_MODELS: dir }, stdio: 'pipe' });
  return dir;
}

// A fake Hugging Face API (the two endpoints hearth's discovery uses).
export async function startFakeHf() {
  const srv = createServer((req, res) => {
    const u = new URL(req.url, 'http://x');
    res.setHeader('Content-Type', 'application/json');
    if (u.pathname === '/api/models') {
      res.end(JSON.stringify([
        { id: 'acme/TinyStories-GGUF', downloads: 1234, likes: 56, lastModified: '2026-11-01T00:00:00Z' },
        { id: 'acme/Huge-GGUF', downloads: 99, likes: 1, lastModified: '2026-10-01T00:00:00Z' },
      ]));
    } else if (u.pathname === '/api/models/acme/TinyStories-GGUF') {
      res.end(JSON.stringify({ siblings: [
        { rfilename: 'TinyStories-Q8_0.gguf', size: 1_200_000 },
        { rfilename: 'TinyStories-F32.gguf', size: 2 ** 50 },
        { rfilename: 'README.md', size: 100 },
      ] }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${srv.address().port}`, close: () => srv.close() };
}

// A proxy in front of a registry that sends blob downloads at `bytesPerSecond`, so a download of
// a small model lasts long enough to pause it. Everything else passes through untouched.
export async function startSlowProxy(target, bytesPerSecond) {
  const { request } = await import('node:http');
  const up = new URL(target);
  const ranges = []; // Range headers of blob requests (a resumed download asks for the rest)
  const srv = createServer((req, res) => {
    if (/\/blobs\/sha256:/.test(req.url) && req.headers.range) ranges.push(req.headers.range);
    const fwd = request({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      if (!/\/blobs\/sha256:/.test(req.url)) return ur.pipe(res);
      ur.on('data', (chunk) => {
        res.write(chunk);
        ur.pause();
        setTimeout(() => ur.resume(), (chunk.length / bytesPerSecond) * 1000);
      });
      ur.on('end', () => res.end());
    });
    fwd.on('error', () => res.destroy());
    res.on('close', () => fwd.destroy());
    req.pipe(fwd);
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${srv.address().port}`, ranges, close: () => srv.close() };
}

// playwright-core is optional at import time: the caller skips when it is missing.
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
           '--no-first-run', '--disable-dev-shm-usage'],
  });
}

const axeSource = () => readFileSync(path.join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');

// Runs axe-core on the page; returns the serious and critical violations (one line each).
export async function axeViolations(page) {
  // Evaluated through the DevTools protocol: the UI's Content-Security-Policy (rightly) refuses
  // inline <script> tags, so addScriptTag would be blocked.
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(axeSource());
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')})`);
}

export async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: false });
}

export function prerequisites() {
  const missing = [];
  if (!existsSync(bin)) missing.push(`hearth binary ${bin}`);
  if (!existsSync(modelPath)) missing.push(`model ${modelPath}`);
  if (!existsSync(chromiumPath)) missing.push(`Chromium ${chromiumPath} (apt-get install chromium)`);
  if (!existsSync(path.join(here, 'node_modules/playwright-core'))) missing.push('tests/ui/node_modules (npm install)');
  return missing;
}
