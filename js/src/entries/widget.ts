// The anywidget module of coderchat_ext.ChatWidget (docs/frontend.md#entries). Traits: chat_id,
// server_url, transport ("auto" | "server" | "kernel"), height.
import type { AnyModel, ChatTransport } from "../transport/types";
import { kernelTransport } from "../transport/kernel";
import { apiBase, pageConfig, serverTransport } from "../transport/server";
import { mountChat } from "../core/chat";

function normalize(url: string): string {
  try {
    return new URL(url, globalThis.location?.href).href.replace(/\/?$/, "/");
  } catch {
    return url;
  }
}

/** Does the page's own Jupyter server answer the API? (probe `GET info`) */
async function sameServerAnswers(baseUrl: string): Promise<boolean> {
  try {
    const response = await fetch(apiBase(baseUrl) + "info", { credentials: "same-origin", headers: { Accept: "application/json" } });
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * The transport per the contract's "auto" rule: the server transport when the page is served
 * by the Jupyter server at `server_url` (same origin + base URL), or when the page carries
 * jupyter-config-data and that server answers the API; otherwise the kernel relay (VS Code,
 * Colab). "server" and "kernel" force one.
 */
export async function pickTransport(model: AnyModel): Promise<{ transport: ChatTransport; dispose(): void; kind: "server" | "kernel" }> {
  const mode = String(model.get("transport") || "auto");
  const serverUrl = String(model.get("server_url") || "");
  const config = pageConfig();
  const pageBase = config.baseUrl ? normalize(config.baseUrl) : null;
  const server = () => ({ transport: serverTransport(pageBase ? { baseUrl: config.baseUrl } : serverUrl ? { baseUrl: serverUrl } : {}), dispose() {}, kind: "server" as const });
  const kernel = () => {
    const t = kernelTransport(model);
    return { transport: t, dispose: () => t.dispose(), kind: "kernel" as const };
  };
  if (mode === "server") return server();
  if (mode === "kernel") return kernel();
  if (pageBase && serverUrl && pageBase === normalize(serverUrl)) return server();
  if (pageBase && (await sameServerAnswers(config.baseUrl))) return server();
  return kernel();
}

export default {
  async render({ model, el }: { model: AnyModel; el: HTMLElement }) {
    const container = document.createElement("div");
    container.className = "cc-widget";
    const applyHeight = () => (container.style.height = String(model.get("height") || "600px"));
    applyHeight();
    el.appendChild(container);
    const picked = await pickTransport(model);
    container.dataset.transport = picked.kind;
    const handle = mountChat(container, {
      transport: picked.transport,
      chatId: model.get("chat_id") || null,
      onChatCreated(chatId) {
        model.set("chat_id", chatId);
        model.save_changes();
      },
    });
    const onChatId = () => handle.setChat(model.get("chat_id") || null);
    model.on("change:chat_id", onChatId);
    model.on("change:height", applyHeight);
    return () => {
      model.off("change:chat_id", onChatId);
      model.off("change:height", applyHeight);
      handle.destroy();
      picked.dispose();
      container.remove();
    };
  },
};
