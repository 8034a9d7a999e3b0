// mountChatList: the caller's chats (GET chats), kept live by the watch feed (titles, statuses,
// created/deleted), with "New chat" and archive (PATCH chats/{id} {archived: true}).
import type { Chat, ChatTransport, ConnectionState, WatchEvent } from "../transport/types";
import { h } from "./dom";

export interface MountChatListOptions {
  transport: ChatTransport;
  selected?: string | null;
  onSelect(chatId: string | null): void;
}

export interface ChatListHandle {
  select(chatId: string | null): void;
  destroy(): void;
}

const STATUS_LABELS: Record<string, string> = {
  pending: "starting",
  running: "working",
  requires_action: "waiting for tools",
  error: "failed",
};

function sortChats(chats: Chat[]): Chat[] {
  return chats.slice().sort((a, b) => (b.pin_order ?? 0) - (a.pin_order ?? 0) || String(b.updated_at).localeCompare(String(a.updated_at)));
}

/** The chat list into `el`; `onSelect(null)` is "New chat". */
export function mountChatList(el: HTMLElement, opts: MountChatListOptions): ChatListHandle {
  const { transport } = opts;
  let chats: Chat[] = [];
  let selected: string | null = opts.selected ?? null;
  let connection: ConnectionState = "connecting";
  let destroyed = false;

  const newButton = h("button", { class: "cc-new-chat", type: "button" }, "+ New chat");
  const list = h("ul", { class: "cc-chat-list-items", role: "listbox", "aria-label": "Chats" });
  const status = h("div", { class: "cc-chat-list-status" });
  const root = h("div", { class: "cc-chat-list" }, h("div", { class: "cc-chat-list-head" }, newButton), status, list);
  el.appendChild(root);
  newButton.addEventListener("click", () => {
    selected = null;
    render();
    opts.onSelect(null);
  });

  function render(): void {
    if (destroyed) return;
    list.textContent = "";
    status.textContent = connection === "reconnecting" ? "Reconnecting…" : "";
    status.hidden = !status.textContent;
    if (!chats.length) list.append(h("li", { class: "cc-muted cc-chat-list-empty" }, "No chats yet."));
    for (const chat of sortChats(chats)) {
      const label = STATUS_LABELS[chat.status];
      const archive = h("button", { class: "cc-archive", type: "button", title: "Archive this chat", "aria-label": "Archive" }, "🗄");
      archive.addEventListener("click", (ev) => {
        ev.stopPropagation();
        void archiveChat(chat.id);
      });
      const item = h("li", { class: `cc-chat-item${chat.id === selected ? " cc-selected" : ""}`, role: "option", "aria-selected": String(chat.id === selected), tabindex: 0, dataset: { chatId: chat.id, status: chat.status } },
        h("span", { class: "cc-chat-item-title" }, chat.title || "Untitled"),
        label ? h("span", { class: `cc-chip cc-status-${chat.status}` }, label) : null,
        archive);
      const choose = () => {
        selected = chat.id;
        render();
        opts.onSelect(chat.id);
      };
      item.addEventListener("click", choose);
      item.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          choose();
        }
      });
      list.append(item);
    }
  }

  async function archiveChat(id: string): Promise<void> {
    try {
      await transport.request("PATCH", `chats/${encodeURIComponent(id)}`, { archived: true });
      chats = chats.filter((c) => c.id !== id);
      if (selected === id) {
        selected = null;
        opts.onSelect(null);
      }
      render();
    } catch (err) {
      status.hidden = false;
      status.textContent = `Could not archive: ${(err as Error).message}`;
    }
  }

  async function load(): Promise<void> {
    try {
      chats = await transport.request<Chat[]>("GET", "chats", undefined, { limit: "200" });
      render();
    } catch (err) {
      status.hidden = false;
      status.textContent = `Could not load chats: ${(err as Error).message}`;
    }
  }

  function onWatch(e: WatchEvent): void {
    const chat = e.chat;
    if (!chat?.id) return;
    if (e.kind === "deleted" || chat.archived) chats = chats.filter((c) => c.id !== chat.id);
    else if (!chat.parent_chat_id) {
      const at = chats.findIndex((c) => c.id === chat.id);
      if (at >= 0) chats[at] = { ...chats[at], ...chat };
      else chats.push(chat);
    }
    render();
  }

  const stop = transport.watchChats({
    event: onWatch,
    state: (s) => {
      // After a reconnect, reload: events in the gap were missed.
      if (s === "open" && connection === "reconnecting") void load();
      connection = s;
      render();
    },
  });
  void load();
  render();

  return {
    select(chatId: string | null) {
      selected = chatId;
      render();
    },
    destroy() {
      destroyed = true;
      stop();
      root.remove();
    },
  };
}
