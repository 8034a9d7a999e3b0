import { describe, expect, it } from "vitest";
import { TRUNCATE_LINES, renderToolCard, type CardUi } from "../src/core/cards";
import { callPart, resultPart } from "./frames";

function card(name: string, args: any, result?: any, extra: any = {}): HTMLElement {
  const ui: CardUi = new Map();
  const el = renderToolCard({ call: callPart("c1", name, args), result: result === undefined ? undefined : resultPart("c1", name, result, extra.isError), resultText: extra.resultText, live: extra.live ?? false }, ui);
  document.body.appendChild(el);
  return el;
}

describe("tool cards", () => {
  it("execute: command, terminal output, exit code, duration", () => {
    const el = card("execute", { command: "ls -la" }, { success: true, output: "total 0\nfile.txt\n", exit_code: 0, wall_duration_ms: 1520 });
    expect(el.classList.contains("cc-tool-execute")).toBe(true);
    expect(el.querySelector(".cc-command")!.textContent).toBe("$ ls -la");
    expect(el.querySelector(".cc-terminal")!.textContent).toBe("total 0\nfile.txt\n");
    const chips = Array.from(el.querySelectorAll(".cc-chip")).map((c) => c.textContent);
    expect(chips).toContain("exit 0");
    expect(chips).toContain("1.5s");
    expect(el.classList.contains("cc-tool-failed")).toBe(false);
  });

  it("execute: streams output while running, then a failed exit and the timeout's background chip", () => {
    const running = card("execute", { command: "sleep 60" }, undefined, { resultText: "tick\n", live: true });
    expect(running.classList.contains("cc-tool-running")).toBe(true);
    expect(running.querySelector(".cc-terminal")!.textContent).toBe("tick\n");
    const done = card("execute", { command: "sleep 60" }, { success: false, exit_code: -1, error: "command timed out after 10s", background_process_id: "ab12cd34", output: "tick\n" });
    expect(done.classList.contains("cc-tool-failed")).toBe(true);
    expect(done.textContent).toContain("command timed out after 10s");
    expect(done.textContent).toContain("background ab12cd34");
    expect(Array.from(done.querySelectorAll(".cc-chip")).map((c) => c.textContent)).toContain("exit -1");
  });

  it("execute: a background start shows the process chip", () => {
    const el = card("execute", { command: "python -m http.server", run_in_background: true }, { success: true, background_process_id: "p1" });
    expect(el.textContent).toContain("background p1");
    expect(el.classList.contains("cc-tool-failed")).toBe(false);
  });

  it("edit_files: the result's unified diff, coloured by line", () => {
    const diff = "--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-print('hi')\n+print('hello')\n";
    const el = card("edit_files", { files: [{ path: "app.py", edits: [{ search: "print('hi')", replace: "print('hello')" }] }] }, { ok: true, files: [{ path: "app.py", diff }] });
    expect(el.querySelector(".cc-diff-file-head")!.textContent).toContain("app.py");
    expect(el.querySelector(".cc-diff-add")!.textContent).toBe("+print('hello')\n");
    expect(el.querySelector(".cc-diff-del")!.textContent).toBe("-print('hi')\n");
    expect(el.querySelector(".cc-diff-hunk")).not.toBeNull();
  });

  it("edit_files: the edits as a diff while the result is missing", () => {
    const el = card("edit_files", { files: [{ path: "a.txt", edits: [{ search: "old", replace: "new" }] }, { path: "b.txt", edits: [] }] }, undefined, { live: true });
    expect(el.querySelector(".cc-tool-label")!.textContent).toBe("Edit 2 files");
    expect(el.querySelector(".cc-diff-del")!.textContent).toBe("-old\n");
    expect(el.querySelector(".cc-diff-add")!.textContent).toBe("+new\n");
  });

  it("create_workspace: live build logs, then the workspace and agent status", () => {
    const live = card("create_workspace", { template_id: "t-1" }, undefined, { live: true, resultText: "==> init\npip install pandas\n" });
    expect(live.querySelector(".cc-build-log")!.textContent).toBe("==> init\npip install pandas\n");
    expect(live.querySelector("details")!.open).toBe(true);
    const done = card("create_workspace", { template_id: "t-1" }, { created: true, workspace_name: "analysis", build_id: "b1" });
    const chips = Array.from(done.querySelectorAll(".cc-chip")).map((c) => c.textContent);
    expect(chips).toContain("workspace analysis");
    expect(chips).toContain("created");
    expect(chips).toContain("agent connected");
    const notReady = card("start_workspace", {}, { started: true, workspace_name: "w", agent_status: "not_ready", agent_error: "agent main is connecting" });
    expect(notReady.textContent).toContain("agent not ready");
    expect(notReady.textContent).toContain("agent main is connecting");
  });

  it("create_workspace: the quota card for an INSUFFICIENT_QUOTA payload", () => {
    const el = card("create_workspace", { template_id: "t-1" }, {
      error_code: "INSUFFICIENT_QUOTA",
      error: "insufficient quota: 4 of 4 credits used",
      title: "Workspace quota reached",
      message: "Coder could not create this workspace because your workspace quota is full.",
      next_steps: ["Delete a workspace you no longer need to free quota.", "Ask an administrator to raise your group quota allowance."],
      build_id: "b2",
      quota: { credits_consumed: 4, budget: 4 },
    });
    const quota = el.querySelector(".cc-quota")!;
    expect(quota.querySelector(".cc-quota-title")!.textContent).toBe("Workspace quota reached");
    expect(quota.textContent).toContain("4 of 4 credits in use");
    expect(quota.querySelectorAll("li")).toHaveLength(2);
    expect(el.classList.contains("cc-tool-failed")).toBe(true);
    expect(el.querySelector("details")!.open).toBe(true);
  });

  it("a build failure is an error box", () => {
    const el = card("start_workspace", {}, { error: "init script exited with 1", build_id: "b3" });
    expect(el.querySelector(".cc-tool-error-box")!.textContent).toContain("init script exited with 1");
  });

  it("read_file, write_file, list_templates, read_template, process tools, skills", () => {
    expect(card("read_file", { path: "a.py" }, { content: "1\tx = 1", file_size: 6, total_lines: 1, lines_read: 1 }).textContent).toContain("1 of 1 lines");
    expect(card("write_file", { path: "b.py", content: "print(1)\n" }, { ok: true }).querySelector("pre")!.textContent).toBe("print(1)\n");
    const templates = card("list_templates", {}, { templates: [{ id: "t1", name: "python", display_name: "Python" }], count: 1, page: 1, total_pages: 1, total_count: 1 });
    expect(templates.querySelectorAll(".cc-template")).toHaveLength(1);
    const template = card("read_template", { template_id: "t1" }, { template: { id: "t1", name: "python", active_version_id: "v" }, parameters: [{ name: "packages", type: "string", required: true }], presets: [] });
    expect(template.querySelector("table")!.textContent).toContain("packages");
    expect(card("process_list", {}, { processes: [{ id: "p1", command: "serve", running: true }] }).querySelector("table")!.textContent).toContain("running");
    expect(card("process_signal", { process_id: "p1", signal: "kill" }, { success: true, message: 'signal "kill" sent to process p1' }).textContent).toContain("sent to process p1");
    expect(card("process_output", { process_id: "p1" }, { success: true, output: "log\n", note: "process is still running" }).textContent).toContain("running");
    expect(card("read_skill", { name: "deploy" }, { name: "deploy", dir: "/s", body: "# Deploy\nsteps", files: ["run.sh"] }).querySelector("h1")!.textContent).toBe("Deploy");
    expect(card("read_skill_file", { name: "deploy", path: "run.sh" }, { content: "echo hi" }).querySelector("pre")!.textContent).toBe("echo hi");
  });

  it("an error result is shown as text and marks the card failed", () => {
    const el = card("read_file", { path: "nope" }, "open nope: no such file or directory", { isError: true });
    expect(el.classList.contains("cc-tool-failed")).toBe(true);
    expect(el.querySelector(".cc-tool-error-box")!.textContent).toBe("open nope: no such file or directory");
  });

  it("a generic card for any other or client-side tool", () => {
    const el = card("my_client_tool", { city: "Paris" }, { temperature: 21 });
    expect(el.classList.contains("cc-tool-generic")).toBe(true);
    expect(el.textContent).toContain('"city": "Paris"');
    expect(el.textContent).toContain('"temperature": 21');
  });

  it("truncates a large result with a Show all toggle", () => {
    const output = Array.from({ length: TRUNCATE_LINES + 50 }, (_, i) => `line ${i}`).join("\n");
    const el = card("execute", { command: "seq" }, { success: true, output, exit_code: 0 });
    const pre = el.querySelector(".cc-terminal")!;
    expect(pre.textContent!.split("\n")).toHaveLength(TRUNCATE_LINES);
    const button = el.querySelector<HTMLButtonElement>(".cc-show-all")!;
    expect(button.textContent).toContain(`Show all (${TRUNCATE_LINES + 50} lines`);
    button.click();
    expect(el.querySelector(".cc-terminal")!.textContent).toBe(output);
    expect(el.querySelector(".cc-show-all")!.textContent).toBe("Show less");
  });

  it("renders a result of an unexpected shape without throwing", () => {
    const el = card("edit_files", { files: "not a list" }, 42);
    expect(el.querySelector(".cc-tool-head")).not.toBeNull();
  });
});
