// The sampling parameters as the panel edits them (strings: empty = the server's default) and
// their translation into Ollama's `options`, `format` and `think`.
export interface Params {
  temperature: string;
  top_k: string;
  top_p: string;
  min_p: string;
  repeat_penalty: string;
  repeat_last_n: string;
  presence_penalty: string;
  frequency_penalty: string;
  seed: string;
  num_predict: string;
  stop: string;
  format: 'text' | 'json' | 'schema';
  schema: string;
  think: boolean;
}

export const emptyParams: Params = {
  temperature: '', top_k: '', top_p: '', min_p: '', repeat_penalty: '', repeat_last_n: '',
  presence_penalty: '', frequency_penalty: '', seed: '', num_predict: '', stop: '',
  format: 'text', schema: '', think: false,
};

export const NUMERIC: [keyof Params, string, string][] = [
  ['temperature', 'Temperature', '0.1'],
  ['top_k', 'Top K', '1'],
  ['top_p', 'Top P', '0.05'],
  ['min_p', 'Min P', '0.01'],
  ['repeat_penalty', 'Repeat penalty', '0.05'],
  ['repeat_last_n', 'Repeat window', '1'],
  ['presence_penalty', 'Presence penalty', '0.1'],
  ['frequency_penalty', 'Frequency penalty', '0.1'],
  ['seed', 'Seed', '1'],
  ['num_predict', 'Max tokens', '1'],
];
const INTEGER = new Set(['top_k', 'repeat_last_n', 'seed', 'num_predict']);

export interface RequestParts {
  options: Record<string, unknown>;
  format?: unknown;
  think?: boolean;
  error?: string; // a field that does not parse: sending is disabled
}

export function toRequest(p: Params): RequestParts {
  const options: Record<string, unknown> = {};
  for (const [key, label] of NUMERIC) {
    const raw = String(p[key]).trim();
    if (!raw) continue;
    const v = Number(raw);
    if (!Number.isFinite(v) || (INTEGER.has(key) && !Number.isInteger(v))) {
      return { options, error: `${label} must be ${INTEGER.has(key) ? 'a whole number' : 'a number'}` };
    }
    options[key] = v;
  }
  const stops = p.stop.split(',').map((s) => s.trim()).filter(Boolean);
  if (stops.length) options.stop = stops;
  const out: RequestParts = { options };
  if (p.format === 'json') out.format = 'json';
  if (p.format === 'schema') {
    try {
      out.format = JSON.parse(p.schema);
    } catch (e) {
      return { options, error: `JSON schema: ${(e as Error).message}` };
    }
  }
  if (p.think) out.think = true;
  return out;
}

// Options saved with a conversation or a preset -> panel values (and back via toRequest).
export function fromOptions(o: Record<string, unknown> | undefined): Params {
  const p: Params = { ...emptyParams };
  if (!o) return p;
  for (const [key] of NUMERIC) if (typeof o[key] === 'number') (p as unknown as Record<string, string>)[key] = String(o[key]);
  if (Array.isArray(o.stop)) p.stop = o.stop.join(', ');
  if (o.format === 'json') p.format = 'json';
  else if (o.format && typeof o.format === 'object') {
    p.format = 'schema';
    p.schema = JSON.stringify(o.format, null, 2);
  }
  if (o.think === true) p.think = true;
  return p;
}

// What a conversation/preset stores: the options plus format/think, so fromOptions restores all.
export function toStored(p: Params): Record<string, unknown> {
  const r = toRequest(p);
  const o: Record<string, unknown> = { ...r.options };
  if (r.format !== undefined) o.format = r.format;
  if (r.think) o.think = true;
  return o;
}
