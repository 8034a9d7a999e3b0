// The chat state and the pure functions that fold stream events into it
// (docs/stream-protocol.md). No DOM here, so the rules are unit-tested from recorded frames.
import type { ActionRequired, Chat, ChatError, ChatEvent, ChatMessage, ChatMessagePart, ChatQueuedMessage, ChatStreamRetry, StreamMessagePart } from "../transport/types";

/** A part of the step in flight, merged from its deltas. */
export interface LivePart {
  role?: string;
  /** The part as the last full event gave it; `text` holds the concatenated deltas. */
  part: ChatMessagePart;
  /** Concatenated `args_delta` of a tool call whose `args` have not arrived yet. */
  argsText?: string;
  /** Concatenated `result_delta` of a tool result (build logs, command output). */
  resultText?: string;
}

export interface ChatState {
  /** Persisted messages (ChatMessage) ordered by id, each id once. */
  messages: ChatMessage[];
  /** The parts of the step in flight, in arrival order. */
  live: LivePart[];
  status: string | null;
  /** The last ChatStreamError (or the chat's `last_error`); cleared when a turn starts. */
  error: ChatError | null;
  /** The last ChatStreamRetry while the retry is pending. */
  retry: ChatStreamRetry | null;
  queue: ChatQueuedMessage[];
  actionRequired: ActionRequired | null;
  /** The highest message id seen (the `after_id` of a reconnect). */
  lastMessageId: number;
}

export function initialState(): ChatState {
  return { messages: [], live: [], status: null, error: null, retry: null, queue: [], actionRequired: null, lastMessageId: 0 };
}

/** Forget the history (stream close 4001: it was edited; the next snapshot starts from 0). */
export function resetHistory(state: ChatState): ChatState {
  return { ...state, messages: [], live: [], lastMessageId: 0 };
}

/** The state with the chat row's status and last error (from `GET chats/{id}`). */
export function withChat(state: ChatState, chat: Chat | null | undefined): ChatState {
  const status = state.status ?? chat?.status ?? null;
  const error = state.error ?? (status === "error" ? chat?.last_error ?? null : null);
  return { ...state, status, error };
}

function insertMessage(messages: ChatMessage[], message: ChatMessage): ChatMessage[] {
  const id = message.id;
  const at = messages.findIndex((m) => m.id >= id);
  if (at === -1) return [...messages, message];
  if (messages[at].id === id) {
    const copy = messages.slice();
    copy[at] = message;
    return copy;
  }
  return [...messages.slice(0, at), message, ...messages.slice(at)];
}

/** `live` with one `message_part` payload (`{role?, part}`) merged in. */
export function mergePart(live: LivePart[], payload: StreamMessagePart | null | undefined): LivePart[] {
  const part = payload?.part;
  if (!part || typeof part.type !== "string") return live;
  const role = payload?.role ?? undefined;
  const out = live.slice();
  if (part.type === "text" || part.type === "reasoning") {
    const last = out[out.length - 1];
    if (last && last.part.type === part.type && last.role === role) {
      out[out.length - 1] = { ...last, part: { ...last.part, text: (last.part.text ?? "") + (part.text ?? "") } };
    } else {
      out.push({ role, part: { ...part, text: part.text ?? "" } });
    }
    return out;
  }
  if ((part.type === "tool-call" || part.type === "tool-result") && part.tool_call_id) {
    const at = out.findIndex((p) => p.part.type === part.type && p.part.tool_call_id === part.tool_call_id);
    const prev = at >= 0 ? out[at] : undefined;
    const next: LivePart = prev ? { ...prev, part: { ...prev.part } } : { role, part: { type: part.type, tool_call_id: part.tool_call_id } };
    const fields = Object.entries(part).filter(([k, v]) => k !== "args_delta" && k !== "result_delta" && v !== undefined && v !== null);
    next.part = { ...next.part, ...Object.fromEntries(fields) };
    if (typeof part.args_delta === "string") next.argsText = (next.argsText ?? "") + part.args_delta;
    if (typeof part.result_delta === "string") next.resultText = (next.resultText ?? "") + part.result_delta;
    if (at >= 0) out[at] = next;
    else out.push(next);
    return out;
  }
  out.push({ role, part });
  return out;
}

const ENDED = new Set(["waiting", "error", "requires_action", "completed", "paused"]);

/** Fold one event in. */
export function applyEvent(state: ChatState, e: ChatEvent): ChatState {
  switch (e.type) {
    case "message": {
      const message = e.message;
      if (!message || typeof message.id !== "number") return state;
      const next = { ...state, messages: insertMessage(state.messages, message), lastMessageId: Math.max(state.lastMessageId, message.id) };
      // The persisted assistant message replaces the parts of its step (the server clears its
      // part buffer at the same moment and sends messages before buffered parts on connect).
      if (message.role === "assistant") next.live = [];
      if (message.role === "tool") {
        const ids = new Set((message.content ?? []).map((p) => p.tool_call_id));
        next.live = next.live.filter((p) => !(p.part.type === "tool-result" && ids.has(p.part.tool_call_id)));
      }
      return next;
    }
    case "message_part":
      // A part after a retry notice means the new attempt is under way.
      return { ...state, live: mergePart(state.live, e.message_part), retry: null };
    case "status": {
      const status = e.status ?? state.status;
      // A status event starts every connect snapshot (before the buffered parts) and marks
      // the start and end of a turn, so the parts of the step in flight start over here.
      const next: ChatState = { ...state, status, live: [] };
      if (status === "pending" || status === "running") next.error = null;
      if (status && ENDED.has(status)) next.retry = null;
      if (status !== "requires_action") next.actionRequired = null;
      return next;
    }
    case "retry":
      // The server drops the failed attempt's parts; so do we.
      return { ...state, retry: e.retry ?? null, live: [] };
    case "error":
      return { ...state, error: e.error ?? null, retry: null };
    case "queue_update":
      return { ...state, queue: e.queued_messages ?? [] };
    case "action_required":
      return { ...state, actionRequired: e.action_required ?? null };
    default:
      return state;
  }
}

/** Fold a frame of events in. */
export function applyEvents(state: ChatState, events: ChatEvent[]): ChatState {
  let next = state;
  for (const e of events) next = applyEvent(next, e);
  return next;
}

export type Phase = "idle" | "starting" | "streaming" | "retrying" | "failed" | "requires_action";

/** The status callout's phase (upstream's ChatStatusCallout phases; docs/frontend.md#renderer). */
export function phase(state: ChatState): Phase {
  if (state.status === "error") return "failed";
  if (state.status === "requires_action") return "requires_action";
  if (state.status === "pending" || state.status === "running") {
    if (state.retry) return "retrying";
    return state.live.length ? "streaming" : "starting";
  }
  return "idle";
}

/** True while a turn is in flight (the interrupt button shows). */
export function isBusy(state: ChatState): boolean {
  return state.status === "pending" || state.status === "running";
}

/** Tool results by tool_call_id: persisted ones, then live ones (which carry streamed text). */
export function toolResults(state: ChatState): Map<string, LivePart> {
  const out = new Map<string, LivePart>();
  for (const m of state.messages) {
    for (const p of m.content ?? []) {
      if (p.type === "tool-result" && p.tool_call_id) out.set(p.tool_call_id, { role: m.role, part: p });
    }
  }
  for (const p of state.live) {
    if (p.part.type === "tool-result" && p.part.tool_call_id && !out.has(p.part.tool_call_id)) out.set(p.part.tool_call_id, p);
  }
  return out;
}
