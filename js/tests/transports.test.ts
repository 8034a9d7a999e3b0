import { afterEach, describe, expect, it, vi } from "vitest";
import { kernelTransport } from "../src/transport/kernel";
import { serverTransport } from "../src/transport/server";
import { ApiError, type ConnectionState } from "../src/transport/types";
import { FakeModel, FakeSocket } from "./fakes";
import { CHAT, ev, userMessage } from "./frames";

afterEach(() => {
  FakeSocket.instances = [];
  vi.useRealTimers();
  document.cookie = "_xsrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT";
});

describe("server transport", () => {
  it("sends JSON with the _xsrf cookie as X-XSRFToken and the token header", async () => {
    document.cookie = "_xsrf=2|abc";
    const calls: [string, RequestInit][] = [];
    const fetch = vi.fn(async (url: string, init: RequestInit) => {
      calls.push([url, init]);
      return new Response(JSON.stringify({ id: CHAT }), { status: 201 });
    });
    const t = serverTransport({ baseUrl: "http://jupyter.test/user/ada/", token: "tok", fetch: fetch as any, WebSocket: FakeSocket as any });
    const chat = await t.request<any>("POST", "chats", { content: "hi" }, { x: "1" });
    expect(chat.id).toBe(CHAT);
    const [url, init] = calls[0];
    expect(url).toBe("http://jupyter.test/user/ada/api/coderchat/chats?x=1");
    const headers = init.headers as Record<string, string>;
    expect(headers["X-XSRFToken"]).toBe("2|abc");
    expect(headers["Authorization"]).toBe("token tok");
    expect(init.body).toBe('{"content":"hi"}');
  });

  it("rejects with ApiError carrying status, message, detail; status 0 when unreachable", async () => {
    const fetch = vi.fn(async () => new Response(JSON.stringify({ message: "Chat not found.", detail: "x" }), { status: 404 }));
    const t = serverTransport({ baseUrl: "http://jupyter.test/", fetch: fetch as any });
    const err: any = await t.request("GET", "chats/nope").catch((e: any) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect([err.status, err.message, err.detail]).toEqual([404, "Chat not found.", "x"]);
    const down = serverTransport({ baseUrl: "http://jupyter.test/", fetch: (async () => { throw new TypeError("Failed to fetch"); }) as any });
    expect(((await down.request("GET", "info").catch((e: any) => e)) as any).status).toBe(0);
  });

  it("reconnects with backoff and after_id = the highest message id seen", async () => {
    vi.useFakeTimers();
    const states: ConnectionState[] = [];
    const frames: any[] = [];
    const t = serverTransport({ baseUrl: "http://jupyter.test/", token: "tok", WebSocket: FakeSocket as any, fetch: (() => {}) as any });
    const stop = t.streamChat(CHAT, 0, { events: (e) => frames.push(e), state: (s) => states.push(s) });
    const first = FakeSocket.instances[0];
    expect(first.url).toBe(`ws://jupyter.test/api/coderchat/chats/${CHAT}/stream?after_id=0&token=tok`);
    first.open();
    first.frame([ev.status("running"), ev.message(userMessage(4, "a")), ev.message(userMessage(9, "b"))]);
    first.drop(1006);
    expect(states).toEqual(["connecting", "open", "reconnecting"]);
    expect(FakeSocket.instances).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    const second = FakeSocket.instances[1];
    expect(second.url).toContain("after_id=9");
    second.drop(1006); // never opened: the next delay grows
    await vi.advanceTimersByTimeAsync(200);
    expect(FakeSocket.instances).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(FakeSocket.instances).toHaveLength(3);
    FakeSocket.instances[2].open();
    expect(states[states.length - 1]).toBe("open");
    stop();
    expect(FakeSocket.instances[2].closedWith).toBe(1000);
    expect(states[states.length - 1]).toBe("closed");
    expect(frames).toHaveLength(1);
  });

  it("close 4001 starts over from after_id=0 and says 'connecting'; 4002 resumes at once", async () => {
    vi.useFakeTimers();
    const states: ConnectionState[] = [];
    const t = serverTransport({ baseUrl: "http://jupyter.test/", WebSocket: FakeSocket as any, fetch: (() => {}) as any });
    t.streamChat(CHAT, 0, { events: () => {}, state: (s) => states.push(s) });
    FakeSocket.instances[0].open();
    FakeSocket.instances[0].frame([ev.message(userMessage(3, "a"))]);
    FakeSocket.instances[0].drop(4002);
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSocket.instances[1].url).toContain("after_id=3");
    FakeSocket.instances[1].open();
    FakeSocket.instances[1].drop(4001);
    expect(states.slice(-1)).toEqual(["connecting"]);
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeSocket.instances[2].url).toContain("after_id=0");
  });

  it("watch: one event per frame", () => {
    const events: any[] = [];
    const t = serverTransport({ baseUrl: "http://jupyter.test/", WebSocket: FakeSocket as any, fetch: (() => {}) as any });
    t.watchChats({ event: (e) => events.push(e), state: () => {} });
    expect(FakeSocket.instances[0].url).toBe("ws://jupyter.test/api/coderchat/chats/watch");
    FakeSocket.instances[0].frame({ kind: "title_change", chat: { id: CHAT, title: "New title" } });
    expect(events[0].chat.title).toBe("New title");
  });
});

describe("kernel transport", () => {
  it("relays requests and resolves or rejects on the response", async () => {
    const model = new FakeModel({});
    const t = kernelTransport(model);
    const ok = t.request("GET", "chats", undefined, { limit: "5" });
    const req = model.sent[0];
    expect(req).toMatchObject({ kind: "request", method: "GET", path: "chats", query: { limit: "5" } });
    model.reply({ kind: "response", id: req.id, status: 200, body: [{ id: CHAT }] });
    expect(await ok).toEqual([{ id: CHAT }]);
    const bad = t.request("POST", "chats", { content: "" });
    model.reply({ kind: "response", id: model.sent[1].id, status: 400, body: { message: "Content is required.", detail: "Content cannot be empty." } });
    const err: any = await bad.catch((e: any) => e);
    expect([err.status, err.message]).toEqual([400, "Content is required."]);
    const gone = t.request("GET", "info");
    model.reply({ kind: "response", id: model.sent[2].id, status: 0, body: { message: "The server is unreachable." } });
    expect(((await gone.catch((e: any) => e)) as any).status).toBe(0);
  });

  it("subscribes, routes events and state by id, unsubscribes", () => {
    const model = new FakeModel({});
    const t = kernelTransport(model);
    const got: any[] = [];
    const states: string[] = [];
    const stop = t.streamChat(CHAT, 7, { events: (e) => got.push(...e), state: (s) => states.push(s) });
    const sub = model.sent[0];
    expect(sub).toMatchObject({ kind: "subscribe", chat_id: CHAT, after_id: 7 });
    model.reply({ kind: "events", id: sub.id, events: [ev.status("running")] });
    model.reply({ kind: "events", id: "someone-else", events: [ev.status("error")] });
    model.reply({ kind: "state", id: sub.id, state: "open" });
    expect(got).toEqual([ev.status("running")]);
    expect(states).toEqual(["connecting", "open"]);
    stop();
    expect(model.sent[1]).toEqual({ kind: "unsubscribe", id: sub.id });
    const watched: any[] = [];
    t.watchChats({ event: (e) => watched.push(e), state: () => {} });
    const w = model.sent[2];
    expect(w.kind).toBe("watch");
    model.reply({ kind: "watch_event", id: w.id, event: { kind: "created", chat: { id: CHAT } } });
    expect(watched).toHaveLength(1);
  });
});
