// The standalone page at <base_url>coderchat/: the chat list on the left, the chat on the
// right. The page's HTML (coderchat_ext/server/page.py) carries jupyter-config-data with the
// base URL (and the token when the page was opened with one).
import { mountChat } from "../core/chat";
import { mountChatList } from "../core/chatlist";
import { serverTransport } from "../transport/server";

function chatFromHash(): string | null {
  const m = /^#chat=([\w-]+)$/.exec(location.hash);
  return m ? m[1] : null;
}

export function start(root: HTMLElement): void {
  const transport = serverTransport();
  const side = document.createElement("aside");
  side.className = "cc-page-side";
  const main = document.createElement("main");
  main.className = "cc-page-main";
  root.append(side, main);
  let current = chatFromHash();
  const show = (id: string | null) => {
    current = id;
    history.replaceState(null, "", id ? `#chat=${id}` : location.pathname + location.search);
    chat.setChat(id);
    list.select(id);
  };
  const list = mountChatList(side, { transport, selected: current, onSelect: (id) => show(id) });
  const chat = mountChat(main, { transport, chatId: current, onChatCreated: (id) => show(id) });
  window.addEventListener("hashchange", () => {
    const id = chatFromHash();
    if (id !== current) show(id);
  });
}

const root = document.getElementById("coderchat-root");
if (root) start(root);
