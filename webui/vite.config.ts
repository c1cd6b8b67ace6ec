// The web UI build: one JS bundle + one CSS file with content-hashed names (served with
// `immutable` caching), no source maps, relative paths (served from the binary at "/").
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

export default defineConfig({
  plugins: [preact()],
  base: './',
  build: {
    outDir: 'dist',
    sourcemap: false,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev` against a local `hearth serve` (default port).
    proxy: { '/api': 'http://127.0.0.1:11434', '/metrics': 'http://127.0.0.1:11434', '/v1': 'http://127.0.0.1:11434' },
  },
});
