// The kernel transport: the same API and frames relayed by the widget's Python side over
// anywidget custom messages (docs/frontend.md#kernel-relay-protocol). Used where the page
// is not served by the Jupyter server that hosts the chats (VS Code, Colab).
import { ApiError, type AnyModel, type ApiErrorBody, type ChatEvent, type ChatTransport, type ConnectionState, type HttpMethod, type StreamHandlers, type WatchEvent, type WatchHandlers } from "./types";

type Pending = { resolve(value: unknown): void; reject(err: ApiError): void };

/** A Python → JS message of the relay protocol (widget.py `ChatWidget`). */
type RelayMessage =
  | { kind: "response"; id: string; status: number; body: unknown }
  | { kind: "events"; id: string; events: ChatEvent[] }
  | { kind: "watch_event"; id: string; event?: WatchEvent }
  | { kind: "state"; id: string; state: ConnectionState };

let counter = 0;
function nextId(): string {
  counter += 1;
  return `cc-${Date.now().toString(36)}-${counter}`;
}

/**
 * A transport over `model.send` / `model.on("msg:custom")`. Python answers requests with
 * `{kind: "response", id, status, body}` and feeds subscriptions with `events`, `watch_event`
 * and `state` messages carrying the subscription's id. Call `dispose()` (not part of
 * ChatTransport) to stop listening.
 */
export function kernelTransport(model: AnyModel): ChatTransport & { dispose(): void } {
  const pending = new Map<string, Pending>();
  const streams = new Map<string, StreamHandlers>();
  const watches = new Map<string, WatchHandlers>();

  const onMessage = (msg: RelayMessage) => {
    if (!msg || typeof msg !== "object" || typeof msg.id !== "string") return;
    switch (msg.kind) {
      case "response": {
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        if (typeof msg.status === "number" && (msg.status >= 400 || msg.status === 0)) p.reject(new ApiError(msg.status, (msg.body ?? null) as ApiErrorBody | null));
        else p.resolve(msg.body);
        return;
      }
      case "events":
        streams.get(msg.id)?.events(Array.isArray(msg.events) ? msg.events : []);
        return;
      case "watch_event":
        if (msg.event) watches.get(msg.id)?.event(msg.event);
        return;
      case "state": {
        const state = msg.state;
        (streams.get(msg.id) ?? watches.get(msg.id))?.state(state);
        return;
      }
    }
  };
  model.on("msg:custom", onMessage);

  function request<T = unknown>(method: HttpMethod, path: string, body?: unknown, query?: Record<string, string>): Promise<T> {
    const id = nextId();
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: (value) => resolve(value as T), reject });
      try {
        model.send({ kind: "request", id, method, path, body: body ?? null, query: query ?? {} });
      } catch (err) {
        pending.delete(id);
        reject(new ApiError(0, { message: "The kernel is not connected.", detail: String(err) }));
      }
    });
  }

  function streamChat(chatId: string, afterId: number, on: StreamHandlers): () => void {
    const id = nextId();
    streams.set(id, on);
    on.state("connecting");
    model.send({ kind: "subscribe", id, chat_id: chatId, after_id: afterId });
    return () => {
      if (!streams.delete(id)) return;
      model.send({ kind: "unsubscribe", id });
      on.state("closed");
    };
  }

  function watchChats(on: WatchHandlers): () => void {
    const id = nextId();
    watches.set(id, on);
    on.state("connecting");
    model.send({ kind: "watch", id });
    return () => {
      if (!watches.delete(id)) return;
      model.send({ kind: "unwatch", id });
      on.state("closed");
    };
  }

  function dispose(): void {
    model.off("msg:custom", onMessage);
    for (const p of pending.values()) p.reject(new ApiError(0, { message: "The widget was closed." }));
    pending.clear();
    streams.clear();
    watches.clear();
  }

  return { request, streamChat, watchChats, dispose };
}
