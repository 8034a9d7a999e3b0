// The composer: a textarea (Enter sends, Shift+Enter is a newline, empty messages are not sent),
// the model picker fed by `GET models`, and the interrupt button while a turn runs.
import type { ModelsResponse } from "../transport/types";
import { h } from "./dom";

export interface ComposerOptions {
  /** Send `text` with the chosen model config id; resolve true when it was accepted. */
  onSend(text: string, modelConfigId: string | null): Promise<boolean>;
  onInterrupt(): void;
}

/** The `GET models` answer: providers with their availability and model configs. */

const REASONS: Record<string, string> = {
  missing_api_key: "no API key",
  missing_key: "no API key",
  disabled: "disabled",
  adapter_unavailable: "SDK not installed",
};

export class Composer {
  readonly el: HTMLElement;
  readonly input: HTMLTextAreaElement;
  readonly picker: HTMLSelectElement;
  readonly sendButton: HTMLButtonElement;
  readonly interruptButton: HTMLButtonElement;
  private sending = false;

  constructor(private opts: ComposerOptions) {
    this.input = h("textarea", { class: "cc-input", rows: 2, placeholder: "Message the agent… (Enter to send, Shift+Enter for a new line)", "aria-label": "Message" });
    this.picker = h("select", { class: "cc-model-picker", "aria-label": "Model", title: "Model" });
    this.sendButton = h("button", { class: "cc-send", type: "button", title: "Send (Enter)" }, "Send");
    this.interruptButton = h("button", { class: "cc-interrupt", type: "button", title: "Stop the turn", hidden: true }, "Stop");
    this.el = h("div", { class: "cc-composer" }, this.input, h("div", { class: "cc-composer-bar" }, this.picker, h("span", { class: "cc-spacer" }), this.interruptButton, this.sendButton));
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        void this.send();
      }
    });
    this.sendButton.addEventListener("click", () => void this.send());
    this.interruptButton.addEventListener("click", () => this.opts.onInterrupt());
    this.picker.hidden = true;
  }

  /** Send the text unless it is blank; the text is cleared once the server accepted it. */
  async send(): Promise<void> {
    const text = this.input.value;
    if (!text.trim() || this.sending) return;
    this.sending = true;
    this.sendButton.disabled = true;
    try {
      if (await this.opts.onSend(text, this.picker.value || null)) {
        if (this.input.value === text) this.input.value = "";
      }
    } finally {
      this.sending = false;
      this.sendButton.disabled = false;
    }
  }

  setBusy(busy: boolean): void {
    this.interruptButton.hidden = !busy;
    this.sendButton.textContent = busy ? "Queue" : "Send";
    this.sendButton.title = busy ? "Queue the message until the turn ends (Enter)" : "Send (Enter)";
  }

  /** Fill the picker; `selected` (a model config id) wins over the default model. */
  setModels(models: ModelsResponse, selected?: string | null): void {
    const current = selected || this.picker.value;
    this.picker.textContent = "";
    let fallback: string | null = null;
    for (const p of models.providers ?? []) {
      if (!p.models?.length) continue;
      const demo = p.provider === "demo";
      const reason = p.available ? "" : ` — unavailable: ${REASONS[p.unavailable_reason ?? ""] ?? (p.unavailable_reason ?? "unavailable").replace(/_/g, " ")}`;
      const group = h("optgroup", { label: `${demo ? "Offline demo" : p.display_name ?? p.provider}${reason}` });
      for (const m of p.models) {
        const label = demo && !/demo/i.test(m.display_name) ? `${m.display_name} (offline demo)` : m.display_name;
        const option = h("option", { value: m.id, disabled: !p.available, title: p.available ? `${m.provider}/${m.model}` : reason.replace(" — ", "") }, p.available ? label : `${label}${reason}`);
        group.appendChild(option);
        if (p.available && (m.is_default || fallback === null)) fallback = m.is_default ? m.id : fallback ?? m.id;
      }
      this.picker.appendChild(group);
    }
    const options = Array.from(this.picker.querySelectorAll("option"));
    const pick = options.find((o) => o.value === current && !o.disabled)?.value ?? fallback;
    if (pick) this.picker.value = pick;
    this.picker.hidden = options.length === 0;
  }

  focus(): void {
    this.input.focus();
  }
}
