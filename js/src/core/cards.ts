// One card per tool, like upstream's tool renderers (docs/frontend.md#renderer; result shapes
// from docs/workspaces.md#tools and coderchat_ext/workspaces). A card shows the call's arguments
// as soon as they stream, the streamed output (`result_delta`) while the tool runs, then the
// result.
import { copyButton, h, type Child } from "./dom";
import { asText, callArgs, formatDuration, parseResult } from "./format";
import { renderMarkdown } from "./markdown";

/** Text longer than this (characters) is cut with a "Show all" toggle. */
export const TRUNCATE_CHARS = 8000;
/** ...or with more lines than this. */
export const TRUNCATE_LINES = 200;

/** UI state that survives re-rendering (open cards, expanded outputs), keyed per card. */
export type CardUi = Map<string, boolean>;

export interface CardInput {
  /** The tool-call part (`args` may still be missing while they stream). */
  call: any;
  /** Streamed `args_delta` text. */
  argsText?: string;
  /** The tool-result part, when the tool has finished. */
  result?: any;
  /** Streamed `result_delta` text (build logs, command output) while the tool runs. */
  resultText?: string;
  /** True when the turn is still in flight (a card without result is then "running"). */
  live?: boolean;
}

interface Ctx {
  id: string;
  name: string;
  args: Record<string, any>;
  /** The result value (JSON strings parsed); undefined while running. */
  value: any;
  isError: boolean;
  running: boolean;
  streamed: string;
  ui: CardUi;
}

interface Rendered {
  label: Child;
  meta?: Child[];
  body?: Child[];
  /** Open by default (the user's toggle wins). */
  open?: boolean;
  /** The tool failed even though the result is not flagged is_error. */
  failed?: boolean;
}

type Renderer = (c: Ctx) => Rendered;

/** A `<pre>` with `text`, cut past the limits with a "Show all" toggle remembered in `ui`. */
export function truncatedPre(text: string, key: string, ui: CardUi, className = "cc-pre"): HTMLElement {
  const lines = text.split("\n");
  const tooLong = text.length > TRUNCATE_CHARS || lines.length > TRUNCATE_LINES;
  const wrap = h("div", { class: "cc-pre-wrap" });
  const pre = h("pre", { class: className });
  wrap.appendChild(pre);
  const draw = () => {
    const all = !tooLong || ui.get(key) === true;
    let shown = text;
    if (!all) {
      shown = lines.slice(0, TRUNCATE_LINES).join("\n");
      if (shown.length > TRUNCATE_CHARS) shown = shown.slice(0, TRUNCATE_CHARS);
    }
    pre.textContent = shown;
    wrap.querySelector(".cc-show-all")?.remove();
    if (tooLong) {
      const label = all ? "Show less" : `Show all (${lines.length} lines, ${text.length} characters)`;
      const button = h("button", { class: "cc-show-all", type: "button" }, label);
      button.addEventListener("click", () => {
        ui.set(key, !all);
        draw();
      });
      wrap.appendChild(button);
    }
  };
  draw();
  return wrap;
}

function chip(text: Child, kind = ""): HTMLElement {
  return h("span", { class: `cc-chip${kind ? " cc-chip-" + kind : ""}` }, text);
}

function code(text: string): HTMLElement {
  return h("code", { class: "cc-inline-code" }, text);
}

function errorBox(message: string, extra?: Child): HTMLElement {
  return h("div", { class: "cc-tool-error-box", role: "alert" }, message, extra);
}

function terminal(c: Ctx, output: string, key: string): HTMLElement {
  return truncatedPre(output, `${c.id}:${key}`, c.ui, "cc-pre cc-terminal");
}

function isObject(v: unknown): v is Record<string, any> {
  return !!v && typeof v === "object" && !Array.isArray(v);
}

// --- process tools -------------------------------------------------------------------------

function executeResult(c: Ctx, body: Child[], meta: Child[]): boolean {
  const r = isObject(c.value) ? c.value : undefined;
  let failed = false;
  const output = r?.output ?? (c.running || !r ? c.streamed : "");
  if (output) body.push(terminal(c, String(output), "output"));
  else if (c.running) body.push(h("div", { class: "cc-muted" }, "Running…"));
  if (r) {
    if (r.background_process_id) meta.push(chip(["background ", code(String(r.background_process_id))], "info"));
    if (typeof r.exit_code === "number") meta.push(chip(`exit ${r.exit_code}`, r.exit_code === 0 ? "ok" : "bad"));
    if (typeof r.wall_duration_ms === "number") meta.push(chip(formatDuration(r.wall_duration_ms)));
    if (r.error) {
      failed = true;
      body.push(errorBox(String(r.error)));
    } else if (r.success === false) failed = true;
    if (r.truncated) body.push(h("div", { class: "cc-muted" }, "Output was truncated for the model."));
    if (r.note) body.push(h("div", { class: "cc-note" }, String(r.note)));
  } else if (!c.running && c.value !== undefined) {
    body.push(h("pre", { class: "cc-pre" }, asText(c.value)));
  }
  return failed;
}

const execute: Renderer = (c) => {
  const meta: Child[] = [];
  const body: Child[] = [];
  if (c.args.run_in_background) meta.push(chip("background", "info"));
  if (c.args.workdir) meta.push(chip(["in ", code(String(c.args.workdir))]));
  const failed = executeResult(c, body, meta);
  return { label: h("span", { class: "cc-command" }, "$ ", String(c.args.command ?? "")), meta, body, open: true, failed };
};

const processOutput: Renderer = (c) => {
  const meta: Child[] = [];
  const body: Child[] = [];
  const r = isObject(c.value) ? c.value : undefined;
  if (r?.note === "process is still running") meta.push(chip("running", "info"));
  const failed = executeResult(c, body, meta);
  return { label: ["Output of process ", code(String(c.args.process_id ?? ""))], meta, body, open: true, failed };
};

const processList: Renderer = (c) => {
  const procs: any[] = isObject(c.value) && Array.isArray(c.value.processes) ? c.value.processes : [];
  const body: Child[] = [];
  if (procs.length) {
    body.push(h("table", { class: "cc-table" },
      h("thead", null, h("tr", null, h("th", null, "id"), h("th", null, "command"), h("th", null, "state"))),
      h("tbody", null, procs.map((p) => h("tr", null,
        h("td", null, code(String(p.id ?? ""))),
        h("td", null, code(String(p.command ?? ""))),
        h("td", null, p.running ? chip("running", "info") : chip(`exited ${p.exit_code ?? ""}`.trim(), p.exit_code === 0 ? "ok" : "bad")))))));
  } else if (!c.running) body.push(h("div", { class: "cc-muted" }, "No processes."));
  return { label: "List processes", meta: [chip(`${procs.length}`)], body };
};

const processSignal: Renderer = (c) => {
  const r = isObject(c.value) ? c.value : undefined;
  const body: Child[] = [];
  if (r?.message) body.push(h("div", null, String(r.message)));
  if (r?.error) body.push(errorBox(String(r.error)));
  return { label: ["Send ", String(c.args.signal ?? "signal"), " to process ", code(String(c.args.process_id ?? ""))], body, failed: r?.success === false };
};

// --- files ---------------------------------------------------------------------------------

const readFile: Renderer = (c) => {
  const r = isObject(c.value) ? c.value : undefined;
  const meta: Child[] = [];
  const body: Child[] = [];
  if (r?.is_directory) {
    meta.push(chip(`${r.entries_read ?? ""}/${r.total_entries ?? ""} entries`));
    body.push(truncatedPre(String(r.content ?? ""), `${c.id}:content`, c.ui));
  } else if (r) {
    if (typeof r.total_lines === "number") meta.push(chip(`${r.lines_read ?? 0} of ${r.total_lines} lines`));
    body.push(truncatedPre(String(r.content ?? ""), `${c.id}:content`, c.ui));
  }
  const range = c.args.offset ? ` (from line ${c.args.offset})` : "";
  return { label: ["Read ", code(String(c.args.path ?? "")), range], meta, body };
};

const writeFile: Renderer = (c) => {
  const content = String(c.args.content ?? "");
  const meta: Child[] = [chip(`${content.split("\n").length} lines`)];
  const body: Child[] = [];
  if (content) body.push(truncatedPre(content, `${c.id}:content`, c.ui));
  return { label: ["Write ", code(String(c.args.path ?? ""))], meta, body };
};

/** A unified diff as lines coloured by their first character. */
export function renderDiff(diff: string, key: string, ui: CardUi): HTMLElement {
  const wrap = truncatedPre(diff, key, ui, "cc-pre cc-diff");
  const pre = wrap.querySelector("pre")!;
  const paint = () => {
    const text = pre.textContent ?? "";
    pre.textContent = "";
    for (const line of text.split("\n")) {
      const kind = line.startsWith("+++") || line.startsWith("---") ? "file" : line.startsWith("@@") ? "hunk" : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "ctx";
      pre.appendChild(h("span", { class: `cc-diff-line cc-diff-${kind}` }, line + "\n"));
    }
  };
  paint();
  wrap.querySelector(".cc-show-all")?.addEventListener("click", () => {
    // truncatedPre redraws plain text on toggle; colour it again.
    queueMicrotask(paint);
  });
  return wrap;
}

function editsAsDiff(path: string, edits: any[]): string {
  const out = [`--- a/${path}`, `+++ b/${path}`];
  for (const e of edits ?? []) {
    out.push("@@");
    for (const l of String(e?.search ?? "").split("\n")) out.push("-" + l);
    for (const l of String(e?.replace ?? "").split("\n")) out.push("+" + l);
  }
  return out.join("\n");
}

const editFiles: Renderer = (c) => {
  const files: any[] = Array.isArray(c.args.files) ? c.args.files : [];
  const diffs = new Map<string, string>();
  if (isObject(c.value) && Array.isArray(c.value.files)) for (const f of c.value.files) diffs.set(f.path, String(f.diff ?? ""));
  const body: Child[] = files.map((f, i) =>
    h("div", { class: "cc-diff-file" },
      h("div", { class: "cc-diff-file-head" }, code(String(f.path ?? "")), chip(`${(f.edits ?? []).length} edit${(f.edits ?? []).length === 1 ? "" : "s"}`)),
      renderDiff(diffs.get(f.path) || editsAsDiff(String(f.path ?? ""), f.edits), `${c.id}:diff:${i}`, c.ui)));
  const label = files.length === 1 ? ["Edit ", code(String(files[0].path ?? ""))] : `Edit ${files.length} files`;
  return { label, body, open: true };
};

// --- templates and workspaces ---------------------------------------------------------------

const listTemplates: Renderer = (c) => {
  const r = isObject(c.value) ? c.value : undefined;
  const templates: any[] = Array.isArray(r?.templates) ? r!.templates : [];
  const body: Child[] = templates.map((t) =>
    h("div", { class: "cc-template" },
      h("div", { class: "cc-template-name" }, String(t.display_name || t.name), " ", code(String(t.name))),
      t.description ? h("div", { class: "cc-muted" }, String(t.description)) : null,
      h("div", { class: "cc-template-id" }, "id ", code(String(t.id)))));
  if (r && !templates.length) body.push(h("div", { class: "cc-muted" }, "No templates."));
  const meta: Child[] = r ? [chip(`${r.total_count ?? templates.length} template${(r.total_count ?? templates.length) === 1 ? "" : "s"}`)] : [];
  if (r && r.total_pages > 1) meta.push(chip(`page ${r.page}/${r.total_pages}`));
  return { label: c.args.query ? ["List templates matching ", code(String(c.args.query))] : "List templates", meta, body };
};

const readTemplate: Renderer = (c) => {
  const r = isObject(c.value) ? c.value : undefined;
  const t = r?.template;
  const body: Child[] = [];
  if (t) {
    body.push(h("div", { class: "cc-template-name" }, String(t.display_name || t.name)));
    if (t.description) body.push(h("div", { class: "cc-muted" }, String(t.description)));
    const params: any[] = r!.parameters ?? [];
    if (params.length) {
      body.push(h("table", { class: "cc-table" },
        h("thead", null, h("tr", null, h("th", null, "parameter"), h("th", null, "type"), h("th", null, "default"), h("th", null, ""))),
        h("tbody", null, params.map((p) => h("tr", null,
          h("td", null, code(String(p.name)), p.description ? h("div", { class: "cc-muted" }, String(p.description)) : null),
          h("td", null, String(p.type ?? "")),
          h("td", null, p.default !== undefined ? code(String(p.default)) : ""),
          h("td", null, p.required ? chip("required", "warn") : null))))));
    } else body.push(h("div", { class: "cc-muted" }, "No parameters."));
    const presets: any[] = r!.presets ?? [];
    if (presets.length) body.push(h("div", { class: "cc-presets" }, "Presets: ", presets.map((p) => chip(String(p.name), p.default ? "ok" : ""))));
  }
  return { label: ["Read template ", code(String(t?.name ?? c.args.template_id ?? ""))], body };
};

/** The quota card for an `INSUFFICIENT_QUOTA` payload (docs/workspaces.md#quota). */
export function quotaCard(r: Record<string, any>): HTMLElement {
  return h("div", { class: "cc-quota", role: "alert" },
    h("div", { class: "cc-quota-title" }, String(r.title ?? "Workspace quota reached")),
    h("div", null, String(r.message ?? "")),
    r.quota ? h("div", { class: "cc-quota-usage" }, `${r.quota.credits_consumed} of ${r.quota.budget} credits in use`) : null,
    Array.isArray(r.next_steps) && r.next_steps.length ? h("ul", { class: "cc-quota-steps" }, r.next_steps.map((s: string) => h("li", null, s))) : null,
    r.error ? h("div", { class: "cc-muted" }, String(r.error)) : null);
}

const AGENT_STATUS_TEXT: Record<string, string> = {
  not_ready: "agent not ready",
  no_agent: "no agent",
  selection_error: "agent selection failed",
};

function workspace(verb: string): Renderer {
  return (c) => {
    const r = isObject(c.value) ? c.value : undefined;
    const meta: Child[] = [];
    const body: Child[] = [];
    let failed = false;
    if (c.streamed) body.push(h("div", { class: "cc-log-title" }, "Build log"), truncatedPre(c.streamed, `${c.id}:log`, c.ui, "cc-pre cc-terminal cc-build-log"));
    else if (c.running) body.push(h("div", { class: "cc-muted" }, "Waiting for the build…"));
    if (r) {
      if (r.error_code === "INSUFFICIENT_QUOTA") {
        failed = true;
        body.push(quotaCard(r));
      } else if (r.error) {
        failed = true;
        body.push(errorBox(String(r.error), r.message ? h("div", null, String(r.message)) : null));
        if (Array.isArray(r.validations)) body.push(h("ul", null, r.validations.map((v: any) => h("li", null, code(String(v.field)), ": ", String(v.detail)))));
      } else {
        if (r.workspace_name) meta.push(chip(["workspace ", code(String(r.workspace_name))]));
        if (r.created || r.started || r.stopped) meta.push(chip(r.created ? "created" : r.started ? "started" : "stopped", "ok"));
        if (r.status) meta.push(chip(String(r.status).replace(/_/g, " ")));
        if (r.message) body.push(h("div", null, String(r.message)));
        if (r.agent_status) {
          meta.push(chip(AGENT_STATUS_TEXT[r.agent_status] ?? String(r.agent_status), "warn"));
          if (r.agent_error) body.push(h("div", { class: "cc-note" }, String(r.agent_error)));
        } else if (r.created || r.started) meta.push(chip("agent connected", "ok"));
        if (r.startup_scripts) body.push(h("div", { class: "cc-note" }, asText(r.startup_scripts)));
      }
    }
    const template = c.args.template_id ? [" from ", code(String(c.args.name ? c.args.name + " · " : "") + String(c.args.template_id))] : [];
    return { label: [verb, ...template], meta, body, open: c.running || failed, failed };
  };
}

// --- skills ---------------------------------------------------------------------------------

const readSkill: Renderer = (c) => {
  const r = isObject(c.value) ? c.value : undefined;
  const body: Child[] = [];
  if (r?.body) body.push(renderMarkdown(String(r.body)));
  if (Array.isArray(r?.files) && r!.files.length) body.push(h("div", { class: "cc-muted" }, "Files: ", r!.files.map((f: string) => [code(f), " "])));
  return { label: ["Read skill ", code(String(c.args.name ?? ""))], body };
};

const readSkillFile: Renderer = (c) => {
  const r = isObject(c.value) ? c.value : undefined;
  const body: Child[] = r ? [truncatedPre(String(r.content ?? ""), `${c.id}:content`, c.ui)] : [];
  return { label: ["Read ", code(`${c.args.name ?? ""}/${c.args.path ?? ""}`), " from skill"], body };
};

// --- generic --------------------------------------------------------------------------------

const generic: Renderer = (c) => {
  const body: Child[] = [];
  const args = Object.keys(c.args).length ? asText(c.args) : "";
  if (args) body.push(h("div", { class: "cc-log-title" }, "Arguments"), truncatedPre(args, `${c.id}:args`, c.ui));
  if (c.streamed && c.running) body.push(h("div", { class: "cc-log-title" }, "Output"), truncatedPre(c.streamed, `${c.id}:stream`, c.ui, "cc-pre cc-terminal"));
  if (c.value !== undefined && !c.isError) body.push(h("div", { class: "cc-log-title" }, "Result"), truncatedPre(asText(c.value), `${c.id}:result`, c.ui));
  return { label: c.name || "tool", body };
};

const RENDERERS: Record<string, Renderer> = {
  execute,
  process_output: processOutput,
  process_list: processList,
  process_signal: processSignal,
  read_file: readFile,
  write_file: writeFile,
  edit_files: editFiles,
  list_templates: listTemplates,
  read_template: readTemplate,
  create_workspace: workspace("Create workspace"),
  start_workspace: workspace("Start workspace"),
  stop_workspace: workspace("Stop workspace"),
  read_skill: readSkill,
  read_skill_file: readSkillFile,
};

/** The names of the tools with a dedicated card (the others get the generic card). */
export const CARD_TOOLS = Object.keys(RENDERERS);

/** The card of one tool call. */
export function renderToolCard(input: CardInput, ui: CardUi): HTMLElement {
  const call = input.call ?? {};
  const result = input.result;
  const name = String(call.tool_name ?? result?.tool_name ?? "");
  const id = String(call.tool_call_id ?? result?.tool_call_id ?? "");
  const running = !result && input.live !== false;
  const isError = !!result?.is_error;
  const ctx: Ctx = {
    id,
    name,
    args: callArgs(call, input.argsText),
    value: result ? parseResult(result.result) : undefined,
    isError,
    running,
    streamed: input.resultText ?? "",
    ui,
  };
  const renderer = RENDERERS[name] ?? generic;
  let rendered: Rendered;
  try {
    rendered = renderer(ctx);
  } catch (err) {
    // A result of an unexpected shape must not break the timeline.
    rendered = generic(ctx);
  }
  const failed = isError || !!rendered.failed;
  const state = running ? h("span", { class: "cc-spinner", "aria-label": "running" }) : failed ? h("span", { class: "cc-state-bad", "aria-label": "failed" }, "✗") : h("span", { class: "cc-state-ok", "aria-label": "done" }, "✓");
  const body: Child[] = [...(rendered.body ?? [])];
  if (isError) body.push(errorBox(asText(result.result)));
  if (!result && !running) body.push(h("div", { class: "cc-muted" }, "No result."));
  const openKey = `${id}:open`;
  const open = ui.has(openKey) ? ui.get(openKey)! : (rendered.open ?? false) || isError;
  const details = h("details", { class: "cc-tool-details", open: open && body.length > 0 },
    h("summary", { class: "cc-tool-head" },
      h("span", { class: "cc-tool-name" }, name || "tool"),
      h("span", { class: "cc-tool-label" }, rendered.label),
      h("span", { class: "cc-tool-meta" }, rendered.meta ?? []),
      state),
    body.length ? h("div", { class: "cc-tool-body" }, body) : null);
  details.addEventListener("toggle", () => ui.set(openKey, details.open));
  const classes = ["cc-tool", `cc-tool-${name.replace(/[^a-z0-9_-]/gi, "") || "generic"}`];
  if (running) classes.push("cc-tool-running");
  if (failed) classes.push("cc-tool-failed");
  if (!RENDERERS[name]) classes.push("cc-tool-generic");
  const card = h("div", { class: classes.join(" "), dataset: { tool: name, toolCallId: id } }, details);
  if (name === "execute" && ctx.args.command) card.querySelector(".cc-tool-head")!.appendChild(copyButton(() => String(ctx.args.command)));
  return card;
}
