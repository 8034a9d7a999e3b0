import { describe, expect, it, vi } from "vitest";
import { Composer } from "../src/core/composer";

function setup(accept = true) {
  const sent: [string, string | null][] = [];
  const onInterrupt = vi.fn();
  const composer = new Composer({ onSend: async (text, model) => (sent.push([text, model]), accept), onInterrupt });
  document.body.appendChild(composer.el);
  return { composer, sent, onInterrupt };
}

function key(el: HTMLElement, init: KeyboardEventInit): KeyboardEvent {
  const event = new KeyboardEvent("keydown", { bubbles: true, cancelable: true, ...init });
  el.dispatchEvent(event);
  return event;
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("composer", () => {
  it("Enter sends and clears; Shift+Enter does not send", async () => {
    const { composer, sent } = setup();
    composer.input.value = "hello";
    const shift = key(composer.input, { key: "Enter", shiftKey: true });
    expect(shift.defaultPrevented).toBe(false);
    await flush();
    expect(sent).toEqual([]);
    const enter = key(composer.input, { key: "Enter" });
    expect(enter.defaultPrevented).toBe(true);
    await flush();
    expect(sent).toEqual([["hello", null]]);
    expect(composer.input.value).toBe("");
  });

  it("an empty or blank message is not sent", async () => {
    const { composer, sent } = setup();
    composer.input.value = "   \n ";
    key(composer.input, { key: "Enter" });
    composer.sendButton.click();
    await flush();
    expect(sent).toEqual([]);
  });

  it("keeps the text when the server refused it", async () => {
    const { composer } = setup(false);
    composer.input.value = "keep me";
    composer.sendButton.click();
    await flush();
    expect(composer.input.value).toBe("keep me");
  });

  it("the model picker: default selected, demo labelled, unavailable providers disabled with their reason", async () => {
    const { composer, sent } = setup();
    composer.setModels({
      providers: [
        { provider: "demo", display_name: "Offline demo", available: true, models: [{ id: "d1", provider: "demo", model: "coderchat-demo", display_name: "Offline demo model", is_default: false }] },
        { provider: "anthropic", display_name: "Anthropic", available: false, unavailable_reason: "missing_api_key", models: [{ id: "a1", provider: "anthropic", model: "claude", display_name: "Claude", is_default: true }] },
        { provider: "openai", display_name: "OpenAI", available: true, models: [{ id: "o1", provider: "openai", model: "gpt", display_name: "GPT", is_default: true }] },
      ],
    });
    const options = Array.from(composer.picker.querySelectorAll("option"));
    expect(options.map((o) => o.textContent)).toEqual(["Offline demo model", "Claude — unavailable: no API key", "GPT"]);
    expect(options[1].disabled).toBe(true);
    expect(composer.picker.value).toBe("o1");
    composer.input.value = "hi";
    composer.sendButton.click();
    await flush();
    expect(sent).toEqual([["hi", "o1"]]);
  });

  it("shows the interrupt button while busy", () => {
    const { composer, onInterrupt } = setup();
    expect(composer.interruptButton.hidden).toBe(true);
    composer.setBusy(true);
    expect(composer.interruptButton.hidden).toBe(false);
    composer.interruptButton.click();
    expect(onInterrupt).toHaveBeenCalled();
  });
});
