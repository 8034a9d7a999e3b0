// The transport interface the renderer is written against (docs/frontend.md#transports). Wire
// shapes follow coderchat_ext/models.py (docs/stream-protocol.md, docs/data-model.md): snake_case
// JSON, None fields omitted.

/** One event of a chat stream frame (`ChatStreamEvent`); a frame is a JSON array of these. */
export type ChatEvent = {
  type: "message_part" | "message" | "status" | "error" | "retry" | "queue_update" | "action_required";
  chat_id: string;
  message?: any;
  message_part?: any;
  status?: string;
  error?: any;
  retry?: any;
  queued_messages?: any[];
  action_required?: any;
};

/** One event of the per-owner watch feed (`ChatWatchEvent`). */
export type WatchEvent = { kind: string; chat: any; tool_calls?: any[] };

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** An API error: `status` is the HTTP status (0 when the server is unreachable). */
export class ApiError extends Error {
  status: number;
  detail?: string;
  validations?: { field: string; detail: string }[];

  constructor(status: number, body: { message?: string; detail?: string; validations?: { field: string; detail: string }[] } | null) {
    super(body?.message || (status === 0 ? "The server is unreachable." : `HTTP ${status}`));
    this.name = "ApiError";
    this.status = status;
    if (body?.detail) this.detail = body.detail;
    if (body?.validations) this.validations = body.validations;
  }
}

export interface StreamHandlers {
  events(events: ChatEvent[]): void;
  state(state: ConnectionState): void;
}

export interface WatchHandlers {
  event(e: WatchEvent): void;
  state(state: ConnectionState): void;
}

export interface ChatTransport {
  /** `path` is relative to `<base_url>api/coderchat/`, e.g. "chats". Rejects with ApiError. */
  request<T = unknown>(method: HttpMethod, path: string, body?: unknown, query?: Record<string, string>): Promise<T>;
  /** Streams a chat from `afterId`; returns a function that stops the stream. */
  streamChat(chatId: string, afterId: number, on: StreamHandlers): () => void;
  /** The watch feed of the caller's chats; returns a function that stops it. */
  watchChats(on: WatchHandlers): () => void;
}

/** The part of anywidget's model the kernel relay and the widget entry use. */
export interface AnyModel {
  get(name: string): any;
  set(name: string, value: unknown): void;
  save_changes(): void;
  send(content: any, callbacks?: unknown, buffers?: ArrayBuffer[]): void;
  on(event: string, callback: (...args: any[]) => void): void;
  off(event?: string | null, callback?: ((...args: any[]) => void) | null): void;
}
