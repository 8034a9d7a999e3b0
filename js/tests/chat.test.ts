import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "../src/transport/types";
import { mountChat } from "../src/core/chat";
import { mountChatList } from "../src/core/chatlist";
import { FakeTransport, tick } from "./fakes";
import { CHAT, assistantMessage, chatRow, ev, toolTurn, userMessage } from "./frames";

afterEach(() => {
  document.body.textContent = "";
});

function transport(info: any = { real_provider_configured: true }): FakeTransport {
  const t = new FakeTransport();
  t.routes["GET info"] = () => info;
  t.routes["GET models"] = () => ({ providers: [{ provider: "demo", available: true, models: [{ id: "d1", provider: "demo", model: "coderchat-demo", display_name: "Offline demo model", is_default: true }] }] });
  t.routes[`GET chats/${CHAT}`] = () => ({ id: CHAT, title: "Build a plot", status: "waiting" });
  t.routes["POST chats"] = () => ({ id: CHAT, title: "New Chat", status: "pending" });
  t.routes[`POST chats/${CHAT}/messages`] = () => ({ queued: false });
  t.routes[`POST chats/${CHAT}/interrupt`] = () => undefined;
  t.routes[`DELETE chats/${CHAT}/queue/7`] = () => undefined;
  t.routes[`POST chats/${CHAT}/queue/7/promote`] = () => undefined;
  return t;
}

function el(): HTMLElement {
  const div = document.createElement("div");
  document.body.appendChild(div);
  return div;
}

describe("mountChat", () => {
  it("an empty chat's first message creates the chat, reports it and streams it", async () => {
    const t = transport();
    const created = vi.fn();
    const root = el();
    mountChat(root, { transport: t, chatId: null, onChatCreated: created });
    await tick();
    expect(root.querySelector(".cc-empty")).not.toBeNull();
    expect(root.querySelector<HTMLSelectElement>(".cc-model-picker")!.value).toBe("d1");
    const input = root.querySelector<HTMLTextAreaElement>(".cc-input")!;
    input.value = "Plot a sine wave";
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true }));
    await tick();
    const post = t.requests.find((r) => r.method === "POST" && r.path === "chats")!;
    expect(post.body).toMatchObject({ content: [{ type: "text", text: "Plot a sine wave" }], model_config_id: "d1" });
    expect(created).toHaveBeenCalledWith(CHAT);
    expect(t.stream.chatId).toBe(CHAT);
    expect(t.stream.afterId).toBe(0);
    expect(input.value).toBe("");
  });

  it("renders a streamed turn: user message, live execute card, persisted card, usage", async () => {
    const t = transport();
    const root = el();
    mountChat(root, { transport: t, chatId: CHAT });
    await tick();
    expect(root.querySelector(".cc-chat-title")!.textContent).toBe("Build a plot");
    const frames = toolTurn();
    for (const f of frames.slice(0, 5)) t.push(f);
    await tick();
    expect(root.querySelector(".cc-msg-user")!.textContent).toContain("run it");
    const live = root.querySelector(".cc-msg-live .cc-tool-execute")!;
    expect(live.classList.contains("cc-tool-running")).toBe(true);
    expect(live.querySelector(".cc-terminal")!.textContent).toBe("1\n");
    expect(root.querySelector(".cc-interrupt")!.hasAttribute("hidden")).toBe(false);
    for (const f of frames.slice(5)) t.push(f);
    t.push([ev.message(assistantMessage(5, [{ type: "text", text: "Done." }], { usage: { input_tokens: 1500, output_tokens: 20 }, total_cost_micros: 4800 }))]);
    await tick();
    expect(root.querySelector(".cc-msg-live")).toBeNull();
    const cards = root.querySelectorAll(".cc-tool-execute");
    expect(cards).toHaveLength(1);
    expect(cards[0].querySelector(".cc-terminal")!.textContent).toBe("1\n2\n");
    expect(cards[0].textContent).toContain("exit 0");
    expect(root.querySelector(".cc-usage")!.textContent).toContain("1.5k in");
    expect(root.querySelector(".cc-usage")!.textContent).toContain("$0.0048");
    expect(root.querySelector(".cc-interrupt")!.hasAttribute("hidden")).toBe(true);
  });

  it("shows 'reconnecting', then recovers without duplicating messages; 'connecting' reloads history", async () => {
    const t = transport();
    const root = el();
    mountChat(root, { transport: t, chatId: CHAT });
    t.state("open");
    t.push([ev.status("waiting"), ev.message(userMessage(1, "hi")), ev.message(assistantMessage(2, [{ type: "text", text: "hello" }]))]);
    await tick();
    t.state("reconnecting");
    await tick();
    expect(root.querySelector('[data-phase="reconnecting"]')).not.toBeNull();
    t.state("open");
    t.push([ev.status("waiting"), ev.message(userMessage(1, "hi")), ev.message(assistantMessage(2, [{ type: "text", text: "hello" }]))]);
    await tick();
    expect(root.querySelector('[data-phase="reconnecting"]')).toBeNull();
    expect(root.querySelectorAll(".cc-msg")).toHaveLength(2);
    t.state("connecting"); // history edited: the snapshot restarts from 0
    t.push([ev.status("waiting"), ev.message(userMessage(1, "hi")), ev.message(userMessage(3, "edited"))]);
    await tick();
    expect(Array.from(root.querySelectorAll(".cc-msg")).map((m) => m.textContent)).toEqual(["hi", "edited"]);
  });

  it("queued messages with delete and promote; interrupt", async () => {
    const t = transport();
    const root = el();
    mountChat(root, { transport: t, chatId: CHAT });
    t.push([ev.status("running"), ev.queue([{ id: 7, chat_id: CHAT, content: [{ type: "text", text: "then this" }], created_at: "x" }])]);
    await tick();
    expect(root.querySelector(".cc-queued-text")!.textContent).toBe("then this");
    root.querySelector<HTMLButtonElement>(".cc-promote")!.click();
    root.querySelector<HTMLButtonElement>(".cc-delete")!.click();
    root.querySelector<HTMLButtonElement>(".cc-interrupt")!.click();
    await tick();
    const paths = t.requests.map((r) => `${r.method} ${r.path}`);
    expect(paths).toContain(`POST chats/${CHAT}/queue/7/promote`);
    expect(paths).toContain(`DELETE chats/${CHAT}/queue/7`);
    expect(paths).toContain(`POST chats/${CHAT}/interrupt`);
  });

  it("a busy chat queues the next message", async () => {
    const t = transport();
    const root = el();
    mountChat(root, { transport: t, chatId: CHAT });
    t.push([ev.status("running")]);
    await tick();
    const input = root.querySelector<HTMLTextAreaElement>(".cc-input")!;
    input.value = "and then";
    root.querySelector<HTMLButtonElement>(".cc-send")!.click();
    await tick();
    const post = t.requests.find((r) => r.path === `chats/${CHAT}/messages`)!;
    expect(post.body).toMatchObject({ busy_behavior: "queue", content: [{ type: "text", text: "and then" }] });
  });

  it("a setup notice when no real provider is configured; the send error is shown", async () => {
    const t = transport({ real_provider_configured: false });
    t.routes["POST chats"] = () => {
      throw new ApiError(400, { message: "Invalid model config.", detail: "model config x not found" });
    };
    const root = el();
    mountChat(root, { transport: t, chatId: null });
    await tick();
    expect(root.querySelector(".cc-setup-notice")!.textContent).toContain("offline demo model");
    const input = root.querySelector<HTMLTextAreaElement>(".cc-input")!;
    input.value = "hello";
    root.querySelector<HTMLButtonElement>(".cc-send")!.click();
    await tick();
    const error = root.querySelector<HTMLElement>(".cc-send-error")!;
    expect(error.hidden).toBe(false);
    expect(error.textContent).toContain("Invalid model config.");
    expect(error.textContent).toContain("HTTP 400");
    expect(input.value).toBe("hello");
  });

  it("setChat switches streams; destroy stops the stream", async () => {
    const t = transport();
    const root = el();
    const handle = mountChat(root, { transport: t, chatId: CHAT });
    handle.setChat(null);
    expect(t.streams[0].stopped).toBe(true);
    handle.setChat(CHAT);
    handle.destroy();
    expect(t.stream.stopped).toBe(true);
    expect(root.children).toHaveLength(0);
  });
});

describe("mountChatList", () => {
  it("lists chats, follows the watch feed, archives and selects", async () => {
    const t = new FakeTransport();
    const other = "11111111-2222-3333-4444-555555555555";
    t.routes["GET chats"] = () => [
      { id: CHAT, title: "First", status: "waiting", updated_at: "2025-01-01T00:00:00Z" },
      { id: other, title: "Second", status: "running", updated_at: "2025-01-02T00:00:00Z" },
    ];
    t.routes[`PATCH chats/${other}`] = () => undefined;
    const selected: (string | null)[] = [];
    const root = el();
    mountChatList(root, { transport: t, selected: CHAT, onSelect: (id) => selected.push(id) });
    await tick();
    const titles = () => Array.from(root.querySelectorAll(".cc-chat-item-title")).map((e) => e.textContent);
    expect(titles()).toEqual(["Second", "First"]);
    expect(root.querySelector(".cc-selected .cc-chat-item-title")!.textContent).toBe("First");
    t.watches[0].on.event({ kind: "title_change", chat: chatRow({ id: CHAT, title: "Sine plot", status: "waiting", updated_at: "2025-01-03T00:00:00Z" }) });
    expect(titles()).toEqual(["Sine plot", "Second"]);
    t.watches[0].on.event({ kind: "created", chat: chatRow({ id: "new", title: "Third", status: "pending", updated_at: "2025-01-04T00:00:00Z" }) });
    expect(titles()[0]).toBe("Third");
    root.querySelectorAll<HTMLElement>(".cc-chat-item")[2].click();
    expect(selected).toEqual([other]);
    root.querySelectorAll<HTMLButtonElement>(".cc-archive")[2].click();
    await tick();
    expect(t.requests.find((r) => r.method === "PATCH")!.body).toEqual({ archived: true });
    expect(titles()).toEqual(["Third", "Sine plot"]);
    expect(selected).toEqual([other, null]);
    root.querySelector<HTMLButtonElement>(".cc-new-chat")!.click();
    expect(selected[selected.length - 1]).toBeNull();
    t.watches[0].on.event({ kind: "deleted", chat: chatRow({ id: "new" }) });
    expect(titles()).toEqual(["Sine plot"]);
  });
});
