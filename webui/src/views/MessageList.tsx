// A virtualized list of chat messages: only the messages within a screen or so of the viewport are
// in the DOM. Heights are measured (ResizeObserver) into a table, offsets are prefix sums of it,
// and two spacers stand in for everything off screen, so a 1,000-message chat renders and
// scrolls as fast as a 10-message one. While a reply streams the list sticks to the bottom unless
// the user scrolled up; when a message above the viewport changes height, the scroll position is
// corrected so what the user reads does not jump.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ChatMessage } from '../api';
import { MessageView, type MessageActions } from './Message';

const ESTIMATE = 140; // px, until a message is measured
const OVERSCAN = 800; // px rendered above and below the viewport

interface Props {
  messages: ChatMessage[];
  streamingIndex: number | null;
  actions: MessageActions;
  conversationKey: string;
}

export function MessageList({ messages, streamingIndex, actions, conversationKey }: Props) {
  const scroller = useRef<HTMLDivElement>(null);
  const heights = useRef<number[]>([]);
  const [version, setVersion] = useState(0); // bumped when measurements change
  const [view, setView] = useState({ top: 0, height: 800 });
  const atBottom = useRef(true);
  const observer = useRef<ResizeObserver | null>(null);
  const frame = useRef(0);

  // A new conversation: forget the measurements and start at the bottom.
  useLayoutEffect(() => {
    heights.current = [];
    atBottom.current = true;
    setVersion((v) => v + 1);
  }, [conversationKey]);

  const offsets = useMemo(() => {
    const o = new Array<number>(messages.length + 1);
    o[0] = 0;
    for (let i = 0; i < messages.length; ++i) o[i + 1] = o[i] + (heights.current[i] ?? ESTIMATE);
    return o;
  }, [messages.length, version]);
  const total = offsets[messages.length];
  const offsetsRef = useRef(offsets);
  offsetsRef.current = offsets;

  // The first and last message to render (binary search over the offsets).
  const first = useMemo(() => {
    const y = Math.max(0, view.top - OVERSCAN);
    let lo = 0;
    let hi = messages.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (offsets[mid + 1] <= y) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }, [offsets, view.top, messages.length]);
  let last = first;
  const bottom = view.top + view.height + OVERSCAN;
  while (last < messages.length && offsets[last] < bottom) ++last;

  useEffect(() => {
    observer.current = new ResizeObserver((entries) => {
      let changed = false;
      let above = 0;
      const el = scroller.current;
      for (const e of entries) {
        const idx = Number((e.target as HTMLElement).dataset.index);
        const h = Math.ceil((e.target as HTMLElement).offsetHeight);
        const old = heights.current[idx] ?? ESTIMATE;
        if (h !== old) {
          heights.current[idx] = h;
          changed = true;
          // Growth of a message wholly above the viewport would push the content down.
          if (el && offsetsRef.current[idx + 1] <= el.scrollTop) above += h - old;
        }
      }
      if (changed) {
        if (el && above !== 0 && !atBottom.current) el.scrollTop += above;
        setVersion((v) => v + 1);
      }
    });
    return () => observer.current?.disconnect();
  }, []);

  // Stick to the bottom while at the bottom, when the content changes (new messages, streaming
  // tokens, late measurements), never because the user scrolled.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && atBottom.current) el.scrollTop = el.scrollHeight;
  }, [messages, total]);

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
    cancelAnimationFrame(frame.current);
    frame.current = requestAnimationFrame(() => setView({ top: el.scrollTop, height: el.clientHeight }));
  };

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setView({ top: el.scrollTop, height: el.clientHeight }));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // "Copy code" buttons inside rendered Markdown (one listener for the whole list).
  const onClick = (e: MouseEvent) => {
    const btn = (e.target as HTMLElement).closest('[data-copy-code]') as HTMLButtonElement | null;
    if (!btn) return;
    const code = btn.parentElement?.querySelector('code')?.textContent ?? '';
    void navigator.clipboard?.writeText(code).then(() => {
      btn.textContent = 'Copied';
      setTimeout(() => (btn.textContent = 'Copy code'), 1200);
    });
  };

  const items = [];
  for (let i = first; i < last; ++i) {
    items.push(
      <MessageView key={`${conversationKey}:${i}`} index={i} message={messages[i]}
        streaming={i === streamingIndex} actions={actions} observer={observer.current} />,
    );
  }
  return (
    <div class="messages" ref={scroller} onScroll={onScroll} onClick={onClick} data-testid="message-list"
      role="log" aria-label="Conversation" aria-live="off">
      {messages.length === 0 && <p class="empty">Pick a model and send a message to start.</p>}
      <div style={{ height: `${offsets[first]}px` }} aria-hidden="true" />
      {items}
      <div style={{ height: `${total - offsets[last]}px` }} aria-hidden="true" />
    </div>
  );
}
