// The conversation timeline: persisted messages (rendered once, re-rendered only when their tool
// results change) followed by the parts of the step in flight (like upstream's
// ConversationTimeline; docs/frontend.md#renderer).
import { renderToolCard, type CardUi } from "./cards";
import { h, type Child } from "./dom";
import { formatCost, formatDuration, formatTokens } from "./format";
import { renderMarkdown } from "./markdown";
import type { ChatMessage, ChatMessagePart } from "../transport/types";
import type { ChatState, LivePart } from "./store";
import { toolResults } from "./store";

function visible(message: ChatMessage): boolean {
  return message.role !== "system" && message.visibility !== "model";
}

function textOf(message: ChatMessage): string {
  return (message.content ?? []).filter((p) => p.type === "text").map((p) => p.text ?? "").join("\n\n");
}

function reasoning(text: string, open: boolean): HTMLElement {
  return h("details", { class: "cc-reasoning", open }, h("summary", null, "Reasoning"), renderMarkdown(text, "cc-markdown cc-reasoning-text"));
}

/** Token usage and cost of an assistant message. */
export function usageFooter(message: ChatMessage): HTMLElement | null {
  const u = message.usage;
  const bits: Child[] = [];
  if (u && (u.input_tokens || u.output_tokens)) {
    bits.push(h("span", { title: "input tokens" }, `${formatTokens(u.input_tokens)} in`));
    bits.push(h("span", { title: "output tokens" }, `${formatTokens(u.output_tokens)} out`));
    if (u.cache_read_tokens) bits.push(h("span", { title: "tokens read from the prompt cache" }, `${formatTokens(u.cache_read_tokens)} cached`));
    if (u.reasoning_tokens) bits.push(h("span", { title: "reasoning tokens" }, `${formatTokens(u.reasoning_tokens)} reasoning`));
  }
  if (typeof message.total_cost_micros === "number") bits.push(h("span", { title: "cost" }, formatCost(message.total_cost_micros)));
  if (typeof message.runtime_ms === "number" && message.runtime_ms > 0) bits.push(h("span", { title: "model time" }, formatDuration(message.runtime_ms)));
  return bits.length ? h("div", { class: "cc-usage" }, bits) : null;
}

function partNode(part: ChatMessagePart, results: Map<string, LivePart>, ui: CardUi, live: boolean, extra?: LivePart): Child {
  switch (part.type) {
    case "text":
      return part.text ? renderMarkdown(part.text) : null;
    case "reasoning":
      return part.text ? reasoning(part.text, live) : null;
    case "tool-call": {
      const result = part.tool_call_id ? results.get(part.tool_call_id) : undefined;
      return renderToolCard({ call: part, argsText: extra?.argsText, result: result && (result.part.result !== undefined || result.part.is_error) ? result.part : undefined, resultText: result?.resultText, live }, ui);
    }
    case "tool-result":
      return renderToolCard({ call: { tool_call_id: part.tool_call_id, tool_name: part.tool_name }, result: part.result !== undefined ? part : undefined, resultText: extra?.resultText, live }, ui);
    case "file":
      return h("div", { class: "cc-file" }, "📎 ", part.name ?? part.file_name ?? part.media_type ?? "file");
    case "file-reference":
      return h("span", { class: "cc-chip" }, `${part.file_name}${part.start_line ? `:${part.start_line}${part.end_line ? "-" + part.end_line : ""}` : ""}`);
    case "source":
      return part.url ? h("a", { class: "cc-source", href: part.url, target: "_blank", rel: "noopener noreferrer" }, part.title || part.url) : null;
    default:
      return null;
  }
}

/** Whether a user message only carries workspace context (AGENTS.md, skills;
 * docs/workspaces.md#context-files-and-skills), which the daemon stores during a turn: no user
 * input. */
function isContext(message: ChatMessage): boolean {
  const parts = message.content ?? [];
  return parts.length > 0 && parts.every((p) => p.type === "context-file" || p.type === "skill");
}

/** A muted line naming the instruction files and skills the model got; null for the blank
 * marker the daemon stores when the workspace has none. */
function contextNote(message: ChatMessage): HTMLElement | null {
  const files = (message.content ?? []).filter((p) => p.type === "context-file" && p.context_file_path).map((p) => p.context_file_path);
  const skills = (message.content ?? []).filter((p) => p.type === "skill" && p.skill_name).map((p) => p.skill_name);
  if (!files.length && !skills.length) return null;
  const text = [files.length ? `instructions: ${files.join(", ")}` : "", skills.length ? `skills: ${skills.join(", ")}` : ""].filter(Boolean).join(" · ");
  return h("div", { class: "cc-msg cc-msg-context", dataset: { messageId: String(message.id) } }, `Workspace context loaded (${text})`);
}

/** The element of one persisted message; null for messages the user does not see. */
export function renderMessage(message: ChatMessage, results: Map<string, LivePart>, calls: Set<string>, ui: CardUi, busy: boolean): HTMLElement | null {
  if (!visible(message)) return null;
  if (message.role === "user" && isContext(message)) return contextNote(message);
  if (message.role === "user") {
    const text = textOf(message);
    const refs = (message.content ?? []).filter((p) => p.type === "file-reference").map((p) => partNode(p, results, ui, false));
    return h("div", { class: "cc-msg cc-msg-user", dataset: { messageId: String(message.id) } }, h("div", { class: "cc-bubble" }, text ? h("div", { class: "cc-user-text" }, text) : null, refs));
  }
  if (message.role === "tool") {
    // Results are shown in their call's card; a result without a call (provider-executed or
    // client-side tools) gets its own.
    const orphans = (message.content ?? []).filter((p) => p.type === "tool-result" && !(p.tool_call_id && calls.has(p.tool_call_id)));
    if (!orphans.length) return null;
    return h("div", { class: "cc-msg cc-msg-tool", dataset: { messageId: String(message.id) } }, orphans.map((p) => partNode(p, results, ui, false)));
  }
  const parts = (message.content ?? []).map((p) => partNode(p, results, ui, busy));
  return h("div", { class: "cc-msg cc-msg-assistant", dataset: { messageId: String(message.id) } }, parts, usageFooter(message));
}

/** The parts of the step in flight. */
export function renderLive(state: ChatState, ui: CardUi): HTMLElement | null {
  if (!state.live.length) return null;
  const results = toolResults(state);
  const calls = new Set(state.live.filter((p) => p.part.type === "tool-call").map((p) => p.part.tool_call_id));
  const nodes: Child[] = [];
  for (const p of state.live) {
    if (p.part.type === "tool-result" && calls.has(p.part.tool_call_id)) continue;
    nodes.push(partNode(p.part, results, ui, true, p));
  }
  return h("div", { class: "cc-msg cc-msg-assistant cc-msg-live" }, nodes);
}

/** Keeps a container in sync with the state, re-rendering only messages that changed. */
export class Timeline {
  readonly el: HTMLElement;
  private cache = new Map<number, { sig: string; el: HTMLElement | null }>();
  private liveEl: HTMLElement | null = null;

  constructor(private ui: CardUi) {
    this.el = h("div", { class: "cc-timeline", role: "log", "aria-live": "polite" });
  }

  clear(): void {
    this.cache.clear();
    this.liveEl = null;
    this.el.textContent = "";
  }

  update(state: ChatState, busy: boolean, empty?: Child): void {
    const results = toolResults(state);
    const calls = new Set<string>();
    for (const m of state.messages) for (const p of m.content ?? []) if (p.type === "tool-call" && p.tool_call_id) calls.add(p.tool_call_id);
    const wanted: HTMLElement[] = [];
    const seen = new Set<number>();
    for (const m of state.messages) {
      seen.add(m.id);
      const callIds = (m.content ?? []).flatMap((p) => (p.type === "tool-call" && p.tool_call_id ? [p.tool_call_id] : []));
      const pending = callIds.filter((id) => !results.has(id));
      const done = callIds.filter((id) => results.has(id)).map((id) => id + (results.get(id)!.part.result === undefined ? "~" : ""));
      const sig = `${done.join(",")}|${pending.length ? String(busy) : ""}`;
      let entry = this.cache.get(m.id);
      if (!entry || entry.sig !== sig) {
        entry = { sig, el: renderMessage(m, results, calls, this.ui, busy) };
        this.cache.set(m.id, entry);
      }
      if (entry.el) wanted.push(entry.el);
    }
    for (const id of Array.from(this.cache.keys())) if (!seen.has(id)) this.cache.delete(id);
    this.liveEl = renderLive(state, this.ui);
    if (this.liveEl) wanted.push(this.liveEl);
    if (!wanted.length && empty) wanted.push(h("div", { class: "cc-empty" }, empty));
    // Reconcile children in order without re-creating unchanged nodes.
    wanted.forEach((node, i) => {
      if (this.el.children[i] !== node) this.el.insertBefore(node, this.el.children[i] ?? null);
    });
    while (this.el.children.length > wanted.length) this.el.lastElementChild!.remove();
  }
}
