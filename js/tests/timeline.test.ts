import { describe, expect, it } from "vitest";
import { renderMessage } from "../src/core/timeline";
import type { CardUi } from "../src/core/cards";

const ui: CardUi = new Map();

function context(parts: any[]): any {
  return { id: 4, role: "user", visibility: "user", content: parts };
}

describe("workspace context messages", () => {
  it("the blank marker of a workspace without instructions renders nothing", () => {
    const el = renderMessage(context([{ type: "context-file", context_file_agent_id: "a" }]), new Map(), new Set(), ui, false);
    expect(el).toBeNull();
  });

  it("instruction files and skills render as a muted note, not a user bubble", () => {
    const el = renderMessage(
      context([
        { type: "context-file", context_file_path: "/ws/AGENTS.md" },
        { type: "skill", skill_name: "plotting" },
      ]),
      new Map(),
      new Set(),
      ui,
      false,
    )!;
    expect(el.classList.contains("cc-msg-context")).toBe(true);
    expect(el.querySelector(".cc-bubble")).toBeNull();
    expect(el.textContent).toBe("Workspace context loaded (instructions: /ws/AGENTS.md · skills: plotting)");
  });

  it("a user message with text is still a bubble", () => {
    const el = renderMessage({ id: 1, chat_id: "c", created_at: "2025-01-01T12:00:00Z", role: "user", content: [{ type: "text", text: "hi" }] }, new Map(), new Set(), ui, false)!;
    expect(el.querySelector(".cc-bubble")!.textContent).toBe("hi");
  });
});
