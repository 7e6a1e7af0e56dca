// The live feed: `GET /user/activity/stream` read with fetch().
//
// EventSource cannot send an Authorization header, and the API key must not go in a URL
// (access logs, history), so the stream is read with fetch() and the same Bearer header as
// every other call, and its SSE frames are parsed here. What EventSource would do on its own,
// this does too: reconnect, with backoff (1 s doubling to 30 s).

/** Splits one SSE frame into its event name and data (comments skipped). */
function parseFrame(frame) {
  let event = 'message';
  const data = [];
  for (const line of frame.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return { event, data: data.join('\n') };
}

/**
 * Opens the feed at `url` with `key`, calls `onEvent(name, data)` for each event,
 * `onState(mode, text)` as it connects (`connecting`, `live` on the server's `ready`,
 * `retrying`), and `onAuthFailed()` (and stops) on a 401 or 403. Returns `{ close }`.
 */
export function openFeed({ url, key, onEvent, onState, onAuthFailed }) {
  let ctrl = null;
  let timer = 0;
  let delay = 1000;
  let closed = false;

  async function connect() {
    ctrl = new AbortController();
    const mine = ctrl;
    onState('connecting', 'Connecting…');
    try {
      const res = await fetch(url, {
        headers: { Authorization: `Bearer ${key}`, Accept: 'text/event-stream' },
        cache: 'no-store',
        signal: mine.signal,
      });
      if (res.status === 401 || res.status === 403) {
        closed = true;
        onAuthFailed();
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // A CR at the end of a chunk may be the first half of a CRLF: keep it for the next.
        const text = buffer + value;
        const carry = text.endsWith('\r') ? '\r' : '';
        buffer = text.slice(0, text.length - carry.length).replace(/\r\n?/g, '\n');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const { event, data } = parseFrame(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event === 'ready') {
            delay = 1000;
            onState('live', 'Live');
          }
          onEvent(event, data);
        }
        buffer += carry;
      }
      throw new Error('the server closed the stream');
    } catch {
      if (closed || mine.signal.aborted) return;
      onState('retrying', `Live feed lost, retrying in ${Math.round(delay / 1000)} s`);
      timer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    }
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      ctrl?.abort();
    },
  };
}
