import { afterEach, describe, expect, it } from "vitest";
import widget, { pickTransport } from "../src/entries/widget";
import { FakeModel, tick } from "./fakes";
import { CHAT } from "./frames";

afterEach(() => {
  document.body.textContent = "";
  document.getElementById("jupyter-config-data")?.remove();
});

/** Answer every relayed request the way the Python side would. */
function answer(model: FakeModel, routes: Record<string, any>): void {
  for (const msg of model.sent) {
    if (msg.kind !== "request" || msg.answered) continue;
    msg.answered = true;
    const key = `${msg.method} ${msg.path}`;
    model.reply(key in routes ? { kind: "response", id: msg.id, status: 200, body: routes[key] } : { kind: "response", id: msg.id, status: 404, body: { message: "Resource not found." } });
  }
}

describe("anywidget module", () => {
  it("without a Jupyter page config, 'auto' picks the kernel relay", async () => {
    const model = new FakeModel({ transport: "auto", server_url: "http://127.0.0.1:8888/" });
    expect((await pickTransport(model)).kind).toBe("kernel");
    const forced = new FakeModel({ transport: "server", server_url: "http://127.0.0.1:8888/" });
    expect((await pickTransport(forced)).kind).toBe("server");
  });

  it("'auto' picks the server transport when the page's base URL is server_url", async () => {
    const script = document.createElement("script");
    script.id = "jupyter-config-data";
    script.type = "application/json";
    script.textContent = JSON.stringify({ baseUrl: "/lab-base/" });
    document.body.appendChild(script);
    const model = new FakeModel({ transport: "auto", server_url: new URL("/lab-base/", location.href).href });
    expect((await pickTransport(model)).kind).toBe("server");
  });

  it("renders over the kernel relay, writes chat_id back, cleans up", async () => {
    const model = new FakeModel({ transport: "kernel", chat_id: "", height: "400px", server_url: "" });
    const el = document.createElement("div");
    document.body.appendChild(el);
    const cleanup = (await widget.render({ model: model as any, el })) as () => void;
    const container = el.querySelector<HTMLElement>(".cc-widget")!;
    expect(container.dataset.transport).toBe("kernel");
    expect(container.style.height).toBe("400px");
    answer(model, { "GET info": { real_provider_configured: true }, "GET models": { providers: [] } });
    await tick();
    const input = el.querySelector<HTMLTextAreaElement>(".cc-input")!;
    input.value = "hello";
    el.querySelector<HTMLButtonElement>(".cc-send")!.click();
    await tick(5);
    answer(model, { "POST chats": { id: CHAT, title: "hello", status: "pending" } });
    await tick();
    expect(model.values.chat_id).toBe(CHAT);
    expect(model.saved).toBe(1);
    const sub = model.sent.find((m) => m.kind === "subscribe");
    expect(sub).toMatchObject({ chat_id: CHAT, after_id: 0 });
    cleanup();
    expect(model.sent.some((m) => m.kind === "unsubscribe" && m.id === sub.id)).toBe(true);
    expect(el.children).toHaveLength(0);
  });
});
