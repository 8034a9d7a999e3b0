// The server transport: fetch for REST and WebSockets for the chat stream and the watch feed,
// straight to <base_url>api/coderchat/ (docs/api.md, docs/stream-protocol.md;
// auth and XSRF as JupyterLab does it: docs/frontend.md#transports).
import { backoffDelay } from "./backoff";
import { ApiError, type ApiErrorBody, type ChatEvent, type ChatTransport, type ConnectionState, type HttpMethod, type StreamHandlers, type WatchEvent, type WatchHandlers } from "./types";

/** Close code: the chat's history was edited; reload it from after_id=0
 * (docs/stream-protocol.md#close-codes). */
export const CLOSE_HISTORY_CHANGED = 4001;
/** Close code: this client fell behind; reconnect with its last after_id. */
export const CLOSE_TOO_SLOW = 4002;

export interface ServerTransportOptions {
  /** The Jupyter base URL, e.g. "/" or "/user/ada/" or "http://host:8888/". */
  baseUrl?: string;
  /** A Jupyter token; sent as `Authorization: token …` and `?token=` on WebSockets. */
  token?: string;
  /** For tests: the WebSocket constructor and fetch to use. */
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
}

/** The page's Jupyter config (`<script id="jupyter-config-data">`), or {} when absent. */
export function pageConfig(doc: Document | undefined = globalThis.document): Record<string, any> {
  const el = doc?.getElementById("jupyter-config-data");
  if (!el?.textContent) return {};
  try {
    return JSON.parse(el.textContent) ?? {};
  } catch {
    return {};
  }
}

/** The value of cookie `name`, or undefined. */
export function getCookie(name: string, doc: Document | undefined = globalThis.document): string | undefined {
  const cookie = doc?.cookie ?? "";
  for (const entry of cookie.split(";")) {
    const [key, ...rest] = entry.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return undefined;
}

function withSlash(url: string): string {
  return url.endsWith("/") ? url : url + "/";
}

/** The absolute http(s) base of the API for `baseUrl` (relative bases resolve against the page). */
export function apiBase(baseUrl: string): string {
  const origin = globalThis.location?.href ?? "http://localhost/";
  return new URL(withSlash(baseUrl) + "api/coderchat/", origin).href;
}

function wsUrl(httpUrl: string): string {
  const url = new URL(httpUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/**
 * A transport that talks to the Jupyter server directly. `baseUrl` defaults to the page's
 * Jupyter config (`baseUrl`), else "/"; `token` to the config's `token`, else none (cookie auth,
 * with the `_xsrf` cookie echoed as `X-XSRFToken` on every request).
 */
export function serverTransport(opts: ServerTransportOptions = {}): ChatTransport {
  const config = pageConfig();
  const base = apiBase(opts.baseUrl ?? config.baseUrl ?? "/");
  const token: string = opts.token ?? config.token ?? "";
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const Socket = opts.WebSocket ?? globalThis.WebSocket;

  function url(path: string, query?: Record<string, string>): string {
    const u = new URL(path.replace(/^\//, ""), base);
    for (const [k, v] of Object.entries(query ?? {})) u.searchParams.set(k, v);
    return u.href;
  }

  async function request<T = unknown>(method: HttpMethod, path: string, body?: unknown, query?: Record<string, string>): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers["Authorization"] = `token ${token}`;
    const xsrf = getCookie("_xsrf");
    if (xsrf) headers["X-XSRFToken"] = xsrf;
    let response: Response;
    try {
      response = await doFetch(url(path, query), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (err) {
      throw new ApiError(0, { message: "The server is unreachable.", detail: String(err) });
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!response.ok) {
      throw new ApiError(response.status, parsed && typeof parsed === "object" ? (parsed as ApiErrorBody) : { message: `HTTP ${response.status} ${response.statusText}`.trim(), detail: text.slice(0, 500) || undefined });
    }
    return parsed as T;
  }

  /**
   * A socket that reconnects with backoff. `query()` gives the query of the next connection;
   * `onClose(code)` returns true when it reported the state itself.
   */
  function reconnecting(path: string, query: () => Record<string, string>, onFrame: (data: unknown) => void,
                        onState: (s: ConnectionState) => void, onClose: (code: number) => boolean): () => void {
    let socket: WebSocket | null = null;
    let stopped = false;
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;

    const connect = () => {
      if (stopped) return;
      const q = query();
      if (token) q.token = token;
      const ws = new Socket(wsUrl(url(path, q)));
      socket = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        onState("open");
      };
      ws.onmessage = (ev: MessageEvent) => {
        let data: unknown;
        try {
          data = JSON.parse(typeof ev.data === "string" ? ev.data : String(ev.data));
        } catch {
          return;
        }
        onFrame(data);
      };
      ws.onclose = (ev: CloseEvent) => {
        if (socket !== ws || stopped) return;
        socket = null;
        const quiet = onClose(ev.code);
        if (stopped) return;
        attempt = opened ? 1 : attempt + 1;
        if (!quiet) onState("reconnecting");
        timer = setTimeout(connect, ev.code === CLOSE_HISTORY_CHANGED || ev.code === CLOSE_TOO_SLOW ? 0 : backoffDelay(attempt));
      };
    };
    onState("connecting");
    connect();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      const ws = socket;
      socket = null;
      if (ws && ws.readyState <= 1) ws.close(1000);
      onState("closed");
    };
  }

  function streamChat(chatId: string, afterId: number, on: StreamHandlers): () => void {
    // The highest message id seen: reconnects ask only for what came after it, and the server
    // deduplicates by id so nothing is delivered twice (docs/stream-protocol.md#on-connect-replay).
    let cursor = afterId;
    return reconnecting(
      `chats/${encodeURIComponent(chatId)}/stream`,
      () => ({ after_id: String(cursor) }),
      (data) => {
        const events: ChatEvent[] = Array.isArray(data) ? data : [data];
        for (const e of events) {
          if (e.type === "message" && typeof e.message?.id === "number" && e.message.id > cursor) cursor = e.message.id;
        }
        on.events(events);
      },
      on.state,
      (code) => {
        if (code === CLOSE_HISTORY_CHANGED) {
          // History was edited: start over; "connecting" tells the renderer to drop messages.
          cursor = 0;
          on.state("connecting");
          return true;
        }
        return false;
      },
    );
  }

  function watchChats(on: WatchHandlers): () => void {
    return reconnecting("chats/watch", () => ({}), (data) => on.event(data as WatchEvent), on.state, () => false);
  }

  return { request, streamChat, watchChats };
}
