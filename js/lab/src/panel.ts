// The Chats side panel: a Lumino widget hosting the shared renderer's chat list (top) and
// chat view (below). The renderer is mounted the first time the panel is shown, so a
// JupyterLab that never opens the panel opens no chat WebSockets.
import { Widget } from "@lumino/widgets";
import type { Message } from "@lumino/messaging";

import { mountChat, mountChatList } from "../../src/core";
import type { ChatTransport } from "../../src/transport/types";

export interface ChatPanelOptions {
  transport: ChatTransport;
  /** Called with the chat now open (null: the new-chat composer) after every change. */
  onOpen?(chatId: string | null): void;
}

export class ChatPanel extends Widget {
  constructor(options: ChatPanelOptions) {
    super();
    this.addClass("cc-lab-panel");
    this._transport = options.transport;
    this._onOpen = options.onOpen;
    this._listNode = document.createElement("div");
    this._listNode.className = "cc-lab-list";
    this._chatNode = document.createElement("div");
    this._chatNode.className = "cc-lab-chat";
    this.node.append(this._listNode, this._chatNode);
  }

  /** The open chat (null: a new chat is being written). */
  get chatId(): string | null {
    return this._chatId;
  }

  /** Show a chat in the panel, or the empty composer of a new chat for null. */
  open(chatId: string | null): void {
    this._chatId = chatId;
    this._chat?.setChat(chatId);
    this._list?.select(chatId);
    this._onOpen?.(chatId);
  }

  dispose(): void {
    if (this.isDisposed) return;
    this._list?.destroy();
    this._chat?.destroy();
    this._list = this._chat = null;
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._mount();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) this._mount();
  }

  private _mount(): void {
    if (this._list) return;
    this._list = mountChatList(this._listNode, {
      transport: this._transport,
      selected: this._chatId,
      onSelect: (chatId) => {
        if (chatId !== this._chatId) this.open(chatId);
      },
    });
    this._chat = mountChat(this._chatNode, {
      transport: this._transport,
      chatId: this._chatId,
      onChatCreated: (chatId) => {
        // The composer created the chat and already shows it; mark it in the list.
        this._chatId = chatId;
        this._list?.select(chatId);
        this._onOpen?.(chatId);
      },
    });
  }

  private readonly _transport: ChatTransport;
  private readonly _onOpen?: (chatId: string | null) => void;
  private readonly _listNode: HTMLDivElement;
  private readonly _chatNode: HTMLDivElement;
  private _chatId: string | null = null;
  private _list: ReturnType<typeof mountChatList> | null = null;
  private _chat: ReturnType<typeof mountChat> | null = null;
}
