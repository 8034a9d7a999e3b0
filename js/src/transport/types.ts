// The transport interface the renderer is written against (docs/frontend.md#transports). Wire
// shapes follow coderchat_ext/models.py (docs/stream-protocol.md, docs/data-model.md): snake_case
// JSON, None fields omitted.

import type { AnyModel as AnywidgetModel } from "@anywidget/types";
import type { ApiErrorBody, ApiValidation, Chat, ChatStreamEvent, ChatWatchEvent } from "./api";

export type * from "./api";

/** One event of a chat stream frame (`ChatStreamEvent`); a frame is a JSON array of these. */
export type ChatEvent = ChatStreamEvent;

/** One event of the per-owner watch feed (`ChatWatchEvent`). */
export type WatchEvent = ChatWatchEvent;

/** A chat status (`ChatStatus`). */
export type ChatStatus = Chat["status"];

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** An API error: `status` is the HTTP status (0 when the server is unreachable). */
export class ApiError extends Error {
  status: number;
  detail?: string;
  validations?: ApiValidation[];

  constructor(status: number, body: Partial<ApiErrorBody> | null) {
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

/** The traits of `coderchat_ext.ChatWidget` (widget.py) that the front end reads and writes. */
export type ChatWidgetTraits = {
  chat_id: string | null;
  server_url: string;
  transport: "auto" | "server" | "kernel";
  height: string;
};

/** The widget's anywidget model (`@anywidget/types`). */
export type AnyModel = AnywidgetModel<ChatWidgetTraits>;
