import { describe, expect, it } from "vitest";
import { applyEvents, initialState, isBusy, phase, resetHistory, toolResults, withChat, type ChatState } from "../src/core/store";
import { CHAT, assistantMessage, chatRow, ev, textTurn, toolTurn, userMessage } from "./frames";

function play(frames: any[][], state: ChatState = initialState()): ChatState[] {
  const states: ChatState[] = [];
  for (const f of frames) {
    state = applyEvents(state, f);
    states.push(state);
  }
  return states;
}

describe("store", () => {
  it("concatenates text deltas, then the persisted message replaces them", () => {
    const s = play(textTurn());
    expect(phase(s[1])).toBe("starting");
    expect(s[3].live).toHaveLength(1);
    expect(s[3].live[0].part.text).toBe("Hello, **world**");
    expect(phase(s[3])).toBe("streaming");
    const end = s[4];
    expect(end.live).toEqual([]);
    expect(end.messages.map((m) => m.id)).toEqual([1, 2]);
    expect(end.status).toBe("waiting");
    expect(end.lastMessageId).toBe(2);
    expect(phase(end)).toBe("idle");
  });

  it("keeps text and reasoning as separate parts in arrival order", () => {
    const s = applyEvents(initialState(), [ev.status("running"), ev.reasoning("think"), ev.reasoning("ing"), ev.text("a"), ev.text("b")]);
    expect(s.live.map((p) => [p.part.type, p.part.text])).toEqual([["reasoning", "thinking"], ["text", "ab"]]);
  });

  it("streams tool-call args and result_delta, then takes the full call and result", () => {
    const s = play(toolTurn());
    expect(s[2].live[0].argsText).toBe("{\"command\": \"python -c 'print(1)'\"}");
    expect(s[3].live[0].part.args).toEqual({ command: "python -c 'print(1)'" });
    expect(s[5].live[1].resultText).toBe("1\n2\n");
    expect(s[5].live[1].part.result).toBeUndefined();
    expect((s[6].live[1].part.result as { exit_code: number }).exit_code).toBe(0);
    expect(toolResults(s[6]).get("call_1")?.resultText).toBe("1\n2\n");
    expect(s[7].live).toEqual([]);
    expect((toolResults(s[7]).get("call_1")?.part.result as { output: string }).output).toBe("1\n2\n");
    expect(s[9].messages.map((m) => m.id)).toEqual([1, 2, 3, 4]);
  });

  it("shows a retry, drops the failed attempt's parts and clears the retry on new parts", () => {
    const retry = { attempt: 2, delay_ms: 4000, error: "rate limited", kind: "rate_limit", provider: "anthropic", status_code: 429, retrying_at: "2025-01-01T12:00:04Z" };
    let s = applyEvents(initialState(), [ev.status("running"), ev.text("partial")]);
    s = applyEvents(s, [ev.retry(retry)]);
    expect(s.live).toEqual([]);
    expect(phase(s)).toBe("retrying");
    expect(s.retry!.attempt).toBe(2);
    s = applyEvents(s, [ev.text("again")]);
    expect(s.retry).toBeNull();
    expect(phase(s)).toBe("streaming");
  });

  it("records an error and fails; a new turn clears it", () => {
    const error = { message: "The model provider rejected the request.", detail: "invalid x-api-key", kind: "auth", provider: "anthropic", retryable: false, status_code: 401 };
    let s = applyEvents(initialState(), [ev.status("running"), ev.error(error), ev.status("error")]);
    expect(phase(s)).toBe("failed");
    expect(s.error!.status_code).toBe(401);
    s = applyEvents(s, [ev.status("pending")]);
    expect(s.error).toBeNull();
    expect(isBusy(s)).toBe(true);
  });

  it("takes the chat row's last_error when the stream starts in error", () => {
    const s = withChat(initialState(), chatRow({ id: CHAT, status: "error", last_error: { message: "boom", kind: "generic", retryable: false } }));
    expect(phase(s)).toBe("failed");
    expect(s.error!.message).toBe("boom");
  });

  it("replaces the queue with each queue_update", () => {
    const q = [{ id: 7, chat_id: CHAT, content: [{ type: "text", text: "next" }], created_at: "x" }];
    let s = applyEvents(initialState(), [ev.queue(q)]);
    expect(s.queue).toHaveLength(1);
    s = applyEvents(s, [ev.queue([])]);
    expect(s.queue).toEqual([]);
  });

  it("deduplicates a reconnect snapshot by id and re-takes the buffered parts", () => {
    let s = applyEvents(initialState(), [ev.status("running"), ev.message(userMessage(1, "hi")), ev.text("Hel")]);
    // Reconnect: status, messages after after_id (none new), then the whole part buffer again.
    s = applyEvents(s, [ev.status("running"), ev.message(userMessage(1, "hi")), ev.text("Hel"), ev.text("lo")]);
    expect(s.messages).toHaveLength(1);
    expect(s.live.map((p) => p.part.text)).toEqual(["Hello"]);
    s = applyEvents(s, [ev.message(assistantMessage(3, [{ type: "text", text: "Hello" }])), ev.message(assistantMessage(2, [{ type: "text", text: "earlier" }]))]);
    expect(s.messages.map((m) => m.id)).toEqual([1, 2, 3]);
  });

  it("forgets the history on reset (close 4001)", () => {
    const s = resetHistory(applyEvents(initialState(), [ev.message(userMessage(5, "x"))]));
    expect(s.messages).toEqual([]);
    expect(s.lastMessageId).toBe(0);
  });
});
