// System prompt, sampling parameters, response format, and presets (system prompt + parameters
// saved by name on the server: /api/presets).
import { useEffect, useState } from 'preact/hooks';
import { getJson, sendJson, type Preset } from '../api';
import { NUMERIC, fromOptions, toRequest, toStored, type Params } from './params';

interface Props {
  system: string;
  params: Params;
  onSystem(s: string): void;
  onParams(p: Params): void;
  model: string;
  onLoadSettings(): void;
  onClose(): void;
}

export function ParamsPanel({ system, params, onSystem, onParams, model, onLoadSettings, onClose }: Props) {
  const [presets, setPresets] = useState<Preset[]>([]);
  const [preset, setPreset] = useState('');
  const [naming, setNaming] = useState(false);
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const load = () => getJson<{ presets: Preset[] }>('/api/presets').then((r) => setPresets(r.presets)).catch((e: Error) => setError(e.message));
  useEffect(() => void load(), []);

  const set = (key: keyof Params, value: string | boolean) => onParams({ ...params, [key]: value });
  const choose = (n: string) => {
    setPreset(n);
    const p = presets.find((x) => x.name === n);
    if (!p) return;
    onSystem(p.system);
    onParams(fromOptions(p.options));
  };
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      await sendJson('PUT', `/api/presets/${encodeURIComponent(name.trim())}`, { system, options: toStored(params) });
      setNaming(false);
      setPreset(name.trim());
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const remove = async () => {
    if (!preset || !confirm(`Delete the preset “${preset}”?`)) return;
    try {
      await sendJson('DELETE', `/api/presets/${encodeURIComponent(preset)}`);
      setPreset('');
      await load();
    } catch (err) {
      setError((err as Error).message);
    }
  };
  const parsed = toRequest(params);

  return (
    <aside class="params" aria-labelledby="params-title">
      <div class="row">
        <h2 id="params-title" class="grow">Parameters</h2>
        <button type="button" class="small" onClick={onClose}>Hide<span class="sr-only"> parameters</span></button>
      </div>
      <div class="field">
        <label for="preset">Preset</label>
        <div class="row">
          <select id="preset" value={preset} onChange={(e) => choose(e.currentTarget.value)}>
            <option value="">(none)</option>
            {presets.map((p) => <option key={p.name} value={p.name}>{p.name}</option>)}
          </select>
          <button type="button" class="small" onClick={() => { setNaming(true); setName(preset); }}>Save preset</button>
          <button type="button" class="small" disabled={!preset} onClick={remove}>Delete preset</button>
        </div>
        {naming && (
          <form class="row" onSubmit={save}>
            <label for="preset-name" class="sr-only">Preset name</label>
            <input id="preset-name" value={name} placeholder="Preset name" onInput={(e) => setName(e.currentTarget.value)} autoFocus />
            <button type="submit" class="small primary" disabled={!name.trim()}>Save</button>
            <button type="button" class="small" onClick={() => setNaming(false)}>Cancel</button>
          </form>
        )}
      </div>
      <div class="field">
        <label for="system-prompt">System prompt</label>
        <textarea id="system-prompt" rows={4} value={system} onInput={(e) => onSystem(e.currentTarget.value)} />
      </div>
      <div class="grid2">
        {NUMERIC.map(([key, label, step]) => (
          <div class="field" key={key}>
            <label for={`p-${key}`}>{label}</label>
            <input id={`p-${key}`} type="number" step={step} inputMode="decimal" placeholder="default"
              value={params[key] as string} onInput={(e) => set(key, e.currentTarget.value)} />
          </div>
        ))}
      </div>
      <div class="field">
        <label for="p-stop">Stop strings</label>
        <input id="p-stop" placeholder="comma-separated" value={params.stop} onInput={(e) => set('stop', e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="p-format">Response format</label>
        <select id="p-format" value={params.format} onChange={(e) => set('format', e.currentTarget.value)}>
          <option value="text">Text</option>
          <option value="json">JSON</option>
          <option value="schema">JSON schema</option>
        </select>
      </div>
      {params.format === 'schema' && (
        <div class="field">
          <label for="p-schema">JSON schema</label>
          <textarea id="p-schema" rows={5} value={params.schema} onInput={(e) => set('schema', e.currentTarget.value)} />
        </div>
      )}
      <div class="field check">
        <input id="p-think" type="checkbox" checked={params.think} onChange={(e) => set('think', e.currentTarget.checked)} />
        <label for="p-think">Think</label>
      </div>
      {parsed.error && <p class="error" role="alert">{parsed.error}</p>}
      {error && <p class="error" role="alert">{error}</p>}
      <button type="button" class="small" disabled={!model} onClick={onLoadSettings}>Load settings</button>
    </aside>
  );
}
