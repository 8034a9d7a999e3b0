// mountChat: one chat (timeline, callout, queue, composer) fed by any ChatTransport.
import { ApiError, type Chat, type ChatEvent, type ChatQueuedMessage, type ChatTransport, type ConnectionState, type CreateChatMessageRequest, type CreateChatRequest, type ModelsResponse, type ServerInfo } from "../transport/types";
import { renderCallout, tickCallout } from "./callout";
import type { CardUi } from "./cards";
import { Composer } from "./composer";
import { h } from "./dom";
import { applyEvents, initialState, isBusy, phase, resetHistory, withChat, type ChatState } from "./store";
import { Timeline } from "./timeline";

export interface MountChatOptions {
  transport: ChatTransport;
  chatId?: string | null;
  onChatCreated?(chatId: string): void;
}

export interface ChatHandle {
  setChat(chatId: string | null): void;
  destroy(): void;
}

function queuedText(q: ChatQueuedMessage): string {
  return (q.content ?? []).filter((p) => p.type === "text").map((p) => p.text).join(" ");
}

/** Render the chat `chatId` (null: an empty chat created by its first message) into `el`. */
export function mountChat(el: HTMLElement, opts: MountChatOptions): ChatHandle {
  const { transport } = opts;
  const ui: CardUi = new Map();
  let chatId: string | null = opts.chatId || null;
  let chat: Chat | null = null;
  let state: ChatState = initialState();
  let connection: ConnectionState = "closed";
  let stop: (() => void) | null = null;
  let startedAt = Date.now();
  let lastPhase = "";
  let destroyed = false;
  let generation = 0;
  let frame: number | null = null;

  const title = h("div", { class: "cc-chat-title" });
  const notice = h("div", { class: "cc-notices" });
  const timeline = new Timeline(ui);
  const calloutSlot = h("div", { class: "cc-callout-slot" });
  const queueEl = h("div", { class: "cc-queue" });
  const errorEl = h("div", { class: "cc-send-error", role: "alert", hidden: true });
  const composer = new Composer({ onSend: send, onInterrupt: interrupt });
  const scroller = h("div", { class: "cc-scroll" }, timeline.el, calloutSlot);
  const root = h("div", { class: "cc-chat" }, title, notice, scroller, queueEl, errorEl, composer.el);
  el.appendChild(root);

  const ticker = setInterval(() => tickCallout(calloutSlot), 1000);

  function showError(err: unknown): void {
    const e = err instanceof ApiError ? err : new ApiError(0, { message: String(err) });
    errorEl.hidden = false;
    errorEl.textContent = "";
    errorEl.append(h("span", null, e.message), e.detail ? h("span", { class: "cc-muted" }, ` ${e.detail}`) : "", e.status ? h("span", { class: "cc-muted" }, ` (HTTP ${e.status})`) : "",
      h("button", { class: "cc-dismiss", type: "button", onclick: () => (errorEl.hidden = true) }, "×"));
  }

  function render(): void {
    frame = null;
    if (destroyed) return;
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    const p = phase(state);
    if (p === "starting" && lastPhase !== "starting") startedAt = Date.now();
    lastPhase = p;
    title.textContent = chat?.title ?? (chatId ? "" : "New chat");
    title.hidden = !title.textContent;
    root.dataset.status = state.status ?? "";
    root.dataset.connection = connection;
    timeline.update(state, isBusy(state), chatId ? null : "Ask the agent to build something. It can create a workspace on a Jupyter kernel, write files and run commands there.");
    calloutSlot.textContent = "";
    const callout = renderCallout(state, connection, startedAt);
    if (callout) calloutSlot.appendChild(callout);
    renderQueue();
    composer.setBusy(isBusy(state));
    if (nearBottom) scroller.scrollTop = scroller.scrollHeight;
  }

  function schedule(): void {
    if (frame !== null || destroyed) return;
    frame = (globalThis.requestAnimationFrame ?? ((cb: FrameRequestCallback) => setTimeout(() => cb(Date.now()), 16) as unknown as number))(render);
  }

  function renderQueue(): void {
    queueEl.textContent = "";
    queueEl.hidden = state.queue.length === 0;
    if (!state.queue.length) return;
    queueEl.append(h("div", { class: "cc-queue-title" }, `Queued (${state.queue.length})`));
    for (const q of state.queue) {
      queueEl.append(h("div", { class: "cc-queued", dataset: { queuedId: String(q.id) } },
        h("span", { class: "cc-queued-text" }, queuedText(q)),
        h("button", { class: "cc-promote", type: "button", title: "Send this next, interrupting the current turn", onclick: () => queueAction("POST", `queue/${q.id}/promote`) }, "Send now"),
        h("button", { class: "cc-delete", type: "button", title: "Remove from the queue", onclick: () => queueAction("DELETE", `queue/${q.id}`) }, "Delete")));
    }
  }

  async function queueAction(method: "POST" | "DELETE", path: string): Promise<void> {
    if (!chatId) return;
    try {
      await transport.request(method, `chats/${chatId}/${path}`);
    } catch (err) {
      showError(err);
    }
  }

  function onEvents(events: ChatEvent[]): void {
    state = applyEvents(state, events);
    schedule();
  }

  function onState(s: ConnectionState): void {
    if (s === "connecting" && connection !== "closed") {
      // The transport starts over from after_id=0 (history edited): forget what we have.
      state = resetHistory(state);
      timeline.clear();
    }
    connection = s;
    schedule();
  }

  async function loadModels(selected?: string | null): Promise<void> {
    try {
      const models = await transport.request<ModelsResponse>("GET", "models");
      composer.setModels(models, selected);
    } catch {
      // The picker stays hidden; the server's default model is used.
    }
  }

  async function loadInfo(): Promise<void> {
    try {
      const info = await transport.request<ServerInfo>("GET", "info");
      notice.textContent = "";
      if (info && info.real_provider_configured === false) {
        notice.append(h("div", { class: "cc-setup-notice", role: "note" },
          h("strong", null, "No model provider is configured. "),
          "Replies come from the offline demo model. Set ANTHROPIC_API_KEY or OPENAI_API_KEY for the Jupyter server (or configure c.CoderChatApp.providers) and restart it to use a real model."));
      }
    } catch {
      // Informational only.
    }
  }

  function open(id: string | null): void {
    generation += 1;
    const mine = generation;
    stop?.();
    stop = null;
    chatId = id;
    chat = null;
    state = initialState();
    connection = "closed";
    timeline.clear();
    errorEl.hidden = true;
    if (id) {
      transport.request<Chat>("GET", `chats/${encodeURIComponent(id)}`).then((c) => {
        if (mine !== generation) return;
        chat = c;
        state = withChat(state, c);
        if (c?.last_model_config_id) void loadModels(c.last_model_config_id);
        schedule();
      }, (err) => mine === generation && showError(err));
      stop = transport.streamChat(id, 0, { events: (e) => mine === generation && onEvents(e), state: (s) => mine === generation && onState(s) });
    }
    schedule();
  }

  async function send(text: string, modelConfigId: string | null): Promise<boolean> {
    errorEl.hidden = true;
    try {
      if (!chatId) {
        const body: CreateChatRequest = { content: [{ type: "text", text }], client_type: "ui" };
        if (modelConfigId) body.model_config_id = modelConfigId;
        const created = await transport.request<Chat>("POST", "chats", body);
        open(created.id);
        chat = created;
        opts.onChatCreated?.(created.id);
        return true;
      }
      const body: CreateChatMessageRequest = { content: [{ type: "text", text }], busy_behavior: "queue" };
      if (modelConfigId) body.model_config_id = modelConfigId;
      await transport.request("POST", `chats/${encodeURIComponent(chatId)}/messages`, body);
      return true;
    } catch (err) {
      showError(err);
      return false;
    }
  }

  function interrupt(): void {
    if (chatId) void transport.request("POST", `chats/${encodeURIComponent(chatId)}/interrupt`).catch(showError);
  }

  void loadInfo();
  void loadModels();
  open(chatId);

  return {
    setChat(id: string | null) {
      if ((id || null) === chatId) return;
      open(id || null);
      void loadModels(null);
    },
    destroy() {
      destroyed = true;
      generation += 1;
      stop?.();
      stop = null;
      clearInterval(ticker);
      root.remove();
    },
  };
}
