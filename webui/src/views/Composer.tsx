// The message box: Enter sends, Shift+Enter is a new line; while a reply streams the button stops
// it. "/" (outside a text field) or Ctrl/Cmd+L focuses the box.
import { useEffect, useRef, useState } from 'preact/hooks';

interface Props {
  streaming: boolean;
  disabled: boolean;
  onSend(text: string): void;
  onStop(): void;
}

export function Composer({ streaming, disabled, onSend, onStop }: Props) {
  const [text, setText] = useState('');
  const box = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      const typing = t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable;
      if ((e.key === '/' && !typing) || ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'l')) {
        e.preventDefault();
        box.current?.focus();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  const submit = () => {
    const t = text.trim();
    if (!t || streaming || disabled) return;
    setText('');
    onSend(t);
  };
  return (
    <form class="composer" onSubmit={(e) => { e.preventDefault(); submit(); }}>
      <label for="message" class="sr-only">Message</label>
      <textarea id="message" ref={box} rows={3} value={text} placeholder="Message (Enter to send, Shift+Enter for a new line)"
        onInput={(e) => setText(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            submit();
          }
        }} />
      {streaming ? (
        <button type="button" class="danger" onClick={onStop}>Stop</button>
      ) : (
        <button type="submit" class="primary" disabled={disabled || !text.trim()}>Send</button>
      )}
    </form>
  );
}
