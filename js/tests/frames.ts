// Recorded-style stream frames, shaped exactly as coderchat_ext/models.py serializes them
// (ChatStreamEvent with None fields omitted; message_part payloads as chatd/loop.py publishes).
import type { Chat, ChatEvent, ChatMessage, ChatStatus } from "../src/transport/types";

export const CHAT = "6f1c2a58-3f0e-4d1b-9a51-0c3f7e2b9d10";
const T = "2025-01-01T12:00:00.000000Z";

export const ev = {
  status: (status: ChatStatus): ChatEvent => ({ type: "status", chat_id: CHAT, status }),
  part: (part: any, role: "assistant" | "user" | "tool" = "assistant"): ChatEvent => ({ type: "message_part", chat_id: CHAT, message_part: { role, part } }),
  text: (text: string): ChatEvent => ev.part({ type: "text", text }),
  reasoning: (text: string): ChatEvent => ev.part({ type: "reasoning", text }),
  message: (message: any): ChatEvent => ({ type: "message", chat_id: CHAT, message }),
  retry: (retry: any): ChatEvent => ({ type: "retry", chat_id: CHAT, retry }),
  error: (error: any): ChatEvent => ({ type: "error", chat_id: CHAT, error }),
  queue: (queued_messages: any[]): ChatEvent => ({ type: "queue_update", chat_id: CHAT, queued_messages }),
};

/** A chat row with every required field; `fields` override them. */
export function chatRow(fields: Partial<Chat> & { id: string }): Chat {
  return { organization_id: "default", owner: "ada", title: "New Chat", status: "waiting", created_at: T, updated_at: T, ...fields };
}

export function userMessage(id: number, text: string): ChatMessage {
  return { id, chat_id: CHAT, created_by: "ada", created_at: T, role: "user", content: [{ type: "text", text }], visibility: "both" };
}

export function assistantMessage(id: number, content: any[], extra: any = {}): ChatMessage {
  return { id, chat_id: CHAT, model_config_id: "m1", created_at: T, role: "assistant", content, visibility: "both", ...extra };
}

export function toolMessage(id: number, results: any[]): ChatMessage {
  return { id, chat_id: CHAT, created_at: T, role: "tool", content: results, visibility: "both" };
}

export const callPart = (id: string, name: string, args: any) => ({ type: "tool-call", tool_call_id: id, tool_name: name, args, created_at: T });
export const resultPart = (id: string, name: string, result: any, isError = false) => ({ type: "tool-result", tool_call_id: id, tool_name: name, result, ...(isError ? { is_error: true } : {}), created_at: T });

/** A turn: status running, text deltas, the persisted assistant message, status waiting. */
export function textTurn(): ChatEvent[][] {
  return [
    [ev.message(userMessage(1, "Say hello")), ev.status("pending")],
    [ev.status("running")],
    [ev.text("Hel"), ev.text("lo, ")],
    [ev.text("**world**")],
    [ev.message(assistantMessage(2, [{ type: "text", text: "Hello, **world**" }], { usage: { input_tokens: 1200, output_tokens: 34, total_tokens: 1234 }, total_cost_micros: 4110, runtime_ms: 820 })), ev.status("waiting")],
  ];
}

/** A turn with an execute call whose output streams as result_delta before the result. */
export function toolTurn(): ChatEvent[][] {
  const args = { command: "python -c 'print(1)'" };
  return [
    [ev.message(userMessage(1, "run it")), ev.status("running")],
    [ev.part({ type: "tool-call", tool_call_id: "call_1", tool_name: "execute", args_delta: "" })],
    [ev.part({ type: "tool-call", tool_call_id: "call_1", tool_name: "execute", args_delta: '{"command": "python' }), ev.part({ type: "tool-call", tool_call_id: "call_1", tool_name: "execute", args_delta: " -c 'print(1)'\"}" })],
    [ev.part(callPart("call_1", "execute", args))],
    [ev.part({ type: "tool-result", tool_call_id: "call_1", result_delta: "1\n" }, "tool")],
    [ev.part({ type: "tool-result", tool_call_id: "call_1", result_delta: "2\n" }, "tool")],
    [ev.part(resultPart("call_1", "execute", { success: true, output: "1\n2\n", exit_code: 0, wall_duration_ms: 1520 }), "tool")],
    [
      ev.message(assistantMessage(2, [callPart("call_1", "execute", args)])),
      ev.message(toolMessage(3, [resultPart("call_1", "execute", { success: true, output: "1\n2\n", exit_code: 0, wall_duration_ms: 1520 })])),
    ],
    [ev.text("It printed 1 and 2.")],
    [ev.message(assistantMessage(4, [{ type: "text", text: "It printed 1 and 2." }])), ev.status("waiting")],
  ];
}
