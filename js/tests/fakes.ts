// Test doubles: a scriptable ChatTransport, an anywidget model, a WebSocket.
import type { ChatEvent, ChatTransport, ConnectionState, StreamHandlers, WatchHandlers } from "../src/transport/types";
import { ApiError } from "../src/transport/types";

export class FakeTransport implements ChatTransport {
  requests: { method: string; path: string; body?: any; query?: any }[] = [];
  streams: { chatId: string; afterId: number; on: StreamHandlers; stopped: boolean }[] = [];
  watches: { on: WatchHandlers; stopped: boolean }[] = [];
  routes: Record<string, (body: any) => any> = {};

  async request<T>(method: string, path: string, body?: unknown, query?: Record<string, string>): Promise<T> {
    this.requests.push({ method, path, body, query });
    const route = this.routes[`${method} ${path}`];
    if (!route) throw new ApiError(404, { message: "Resource not found." });
    return route(body) as T;
  }

  streamChat(chatId: string, afterId: number, on: StreamHandlers): () => void {
    const s = { chatId, afterId, on, stopped: false };
    this.streams.push(s);
    on.state("connecting");
    return () => {
      s.stopped = true;
    };
  }

  watchChats(on: WatchHandlers): () => void {
    const w = { on, stopped: false };
    this.watches.push(w);
    on.state("connecting");
    return () => {
      w.stopped = true;
    };
  }

  get stream() {
    return this.streams[this.streams.length - 1];
  }

  push(events: ChatEvent[]): void {
    this.stream.on.events(events);
  }

  state(s: ConnectionState): void {
    this.stream.on.state(s);
  }
}

export class FakeModel {
  values: Record<string, any>;
  sent: any[] = [];
  saved = 0;
  listeners = new Map<string, Set<(...a: any[]) => void>>();
  widget_manager = { get_model: () => Promise.reject(new Error("no widget manager in the tests")) };

  constructor(values: Record<string, any>) {
    this.values = { ...values };
  }
  get(name: string) {
    return this.values[name];
  }
  set(name: string, value: unknown) {
    this.values[name] = value;
    this.emit(`change:${name}`);
  }
  save_changes() {
    this.saved += 1;
  }
  send(content: any) {
    this.sent.push(content);
  }
  on(event: string, cb: (...a: any[]) => void) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event)!.add(cb);
  }
  off(event?: string | null, cb?: ((...a: any[]) => void) | null) {
    if (event && cb) this.listeners.get(event)?.delete(cb);
    else if (event) this.listeners.delete(event);
    else this.listeners.clear();
  }
  emit(event: string, ...args: any[]) {
    for (const cb of Array.from(this.listeners.get(event) ?? [])) cb(...args);
  }
  /** Python → JS custom message. */
  reply(msg: any) {
    this.emit("msg:custom", msg, []);
  }
}

export class FakeSocket {
  static instances: FakeSocket[] = [];
  readyState = 0;
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  closedWith: number | null = null;

  constructor(public url: string) {
    FakeSocket.instances.push(this);
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  frame(data: unknown) {
    this.onmessage?.({ data: JSON.stringify(data) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
  close(code = 1000) {
    this.closedWith = code;
    this.readyState = 3;
  }
}

export const tick = (ms = 40) => new Promise((r) => setTimeout(r, ms));
