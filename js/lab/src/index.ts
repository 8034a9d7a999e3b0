// The JupyterLab extension (docs/frontend.md#entries, entry `lab`): a left side panel with the
// chat list on top and the open chat below, both drawn by the shared renderer and fed by the
// server transport; a "New chat" command in the palette. The open chat survives a page reload
// (state database) and the panel's place in the shell is restored by the layout restorer.
import {
  ILayoutRestorer,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin,
} from "@jupyterlab/application";
import { ICommandPalette } from "@jupyterlab/apputils";
import { PageConfig } from "@jupyterlab/coreutils";
import { IStateDB } from "@jupyterlab/statedb";
import { LabIcon } from "@jupyterlab/ui-components";

import { serverTransport } from "../../src/transport/server";
import { ChatPanel } from "./panel";

/** The panel's widget id; also its `data-id` in the side bar and its restorer key. */
export const PANEL_ID = "coderchat-panel";

/** Command ids. */
export const CommandIDs = {
  newChat: "coderchat:new-chat",
  openPanel: "coderchat:open-panel",
} as const;

/** Where the open chat id is kept between page loads. */
const STATE_KEY = "coderchat-ext:panel";

const chatIcon = new LabIcon({
  name: "coderchat-ext:chat",
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">' +
    '<path class="jp-icon3" fill="#616161" d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9.4l-4.7 ' +
    "3.8A1 1 0 0 1 3 21V5a2 2 0 0 1 1-2zm3 6.5a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 " +
    '1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/></svg>',
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: "coderchat-ext:panel",
  description: "A side panel listing the agent chats of coderchat_ext and showing one.",
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette, IStateDB],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    state: IStateDB | null,
  ): void => {
    // Same base URL and token as JupyterLab's own ServerConnection; the transport sends the
    // _xsrf cookie as X-XSRFToken and the token (when there is one) on REST and WebSocket.
    const transport = serverTransport({
      baseUrl: PageConfig.getBaseUrl(),
      token: PageConfig.getToken(),
    });
    const panel = new ChatPanel({
      transport,
      onOpen: (chatId) => {
        void state?.save(STATE_KEY, { chatId });
      },
    });
    panel.id = PANEL_ID;
    panel.title.icon = chatIcon;
    panel.title.caption = "Chats";
    app.shell.add(panel, "left", { rank: 2000 });
    restorer?.add(panel, PANEL_ID);

    app.commands.addCommand(CommandIDs.newChat, {
      label: "New chat",
      caption: "Start a new agent chat in the Chats panel",
      icon: chatIcon,
      execute: () => {
        app.shell.activateById(PANEL_ID);
        panel.open(null);
      },
    });
    app.commands.addCommand(CommandIDs.openPanel, {
      label: "Show the Chats panel",
      execute: () => app.shell.activateById(PANEL_ID),
    });
    palette?.addItem({ command: CommandIDs.newChat, category: "Chat" });
    palette?.addItem({ command: CommandIDs.openPanel, category: "Chat" });

    if (state) {
      // Reopen the chat that was open before the reload. Not awaited: `restored` resolves
      // only after every plugin has activated.
      void Promise.all([app.restored, state.fetch(STATE_KEY)]).then(([, saved]) => {
        const chatId = (saved as { chatId?: string | null } | undefined)?.chatId;
        if (chatId && panel.chatId === null) panel.open(chatId);
      });
    }
  },
};

export default plugin;
