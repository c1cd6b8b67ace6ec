// One installed model in detail (/api/show): Modelfile, template, parameters, license, and its
// load settings.
import { useEffect, useState } from 'preact/hooks';
import { sendJson, type ShowAnswer } from '../api';
import { LoadSettings } from './LoadSettings';

const TABS = ['Modelfile', 'Template', 'Parameters', 'License'] as const;

export function ModelDetails({ name, onClose }: { name: string; onClose(): void }) {
  const [show, setShow] = useState<ShowAnswer | null>(null);
  const [tab, setTab] = useState<(typeof TABS)[number]>('Modelfile');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    sendJson<ShowAnswer>('POST', '/api/show', { model: name }).then(setShow).catch((e: Error) => setError(e.message));
  }, [name]);
  const text =
    tab === 'Modelfile' ? show?.modelfile : tab === 'Template' ? show?.template : tab === 'Parameters' ? show?.parameters : show?.license;
  return (
    <section class="card details" aria-labelledby="details-title">
      <div class="row">
        <h2 id="details-title" class="grow">{name}</h2>
        <button type="button" class="small" onClick={onClose}>Close details</button>
      </div>
      {error && <p class="error" role="alert">{error}</p>}
      <div class="tabs" role="tablist" aria-label="Model files">
        {TABS.map((t) => (
          <button type="button" role="tab" key={t} aria-selected={tab === t} class={tab === t ? 'active' : ''} onClick={() => setTab(t)}>{t}</button>
        ))}
      </div>
      <pre class="show-text" role="tabpanel" tabIndex={0} aria-label={tab}>{text || (show ? '(none)' : 'Loading…')}</pre>
      <LoadSettings model={name} />
    </section>
  );
}
