"""Prompt assembly (docs/loop.md#prompt-assembly).

At creation a chat gets, in one transaction and in this order: the deployment system prompt
(default prompt and/or the admin's custom prompt), the chat's own ``system_prompt``, the
workspace-awareness note (all role ``system``, visibility ``model``), then the user message.
Each turn then puts per-turn system blocks before the history: the subagent instruction
(children), the workspace's instruction files and skills index (:func:`context_blocks`), and
the user's custom prompt in ``<user-instructions>``.
"""

from __future__ import annotations

import unicodedata

from ..models import ChatMessagePart

DEFAULT_SYSTEM_PROMPT = """\
You are an agent working for a user of Jupyter, inside coderchat_ext. You can hold a \
conversation, and when the task calls for it you act in a workspace: a directory with a \
Jupyter kernel as its agent, where tools read and write files and run commands.

- Be direct and concise. Use Markdown; put code, commands and paths in code formatting.
- Prefer doing over describing: when a tool can answer a question, use it instead of guessing.
- Reuse the chat's workspace when it has one. Create a workspace only when the task needs one.
- Read files before editing them, make the smallest change that does the job, and check your \
work by running it when you can.
- When a tool fails, read the error, fix the cause and try again; do not repeat a failing call \
unchanged.
- Never invent file contents, command output or results you did not see.
"""

SUBAGENT_INSTRUCTION = (
    "You are running as a delegated sub-agent chat. Complete the delegated task and provide "
    "clear, concise assistant responses for the parent agent."
)

WORKSPACE_ATTACHED_NOTE = (
    "This chat is attached to a workspace. You can use workspace tools like execute, "
    "read_file, write_file and edit_files to work in it."
)
NO_WORKSPACE_NOTE = (
    "This chat has no workspace yet. If the task needs files or commands, use the "
    "create_workspace tool first (list_templates shows what can be created); otherwise just "
    "answer."
)

SKILLS_INDEX_INTRO = (
    "Use read_skill to load a skill's full instructions before following them.\n"
    "Use read_skill_file to read supporting files referenced by a workspace skill."
)
"""The first lines of the ``<available-skills>`` block
(docs/workspaces.md#context-files-and-skills)."""


def sanitize_prompt(text: str) -> str:
    """Trim, normalize newlines and drop control characters other than newline and tab."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    cleaned = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    return cleaned.strip()


def deployment_system_prompt(custom: str | None, include_default: bool | None) -> str:
    """The deployment system prompt (docs/loop.md#prompt-assembly, creation item 1).

    ``include_default`` None applies the legacy rule: include the default unless a custom prompt
    exists.
    """
    custom = sanitize_prompt(custom or "")
    if include_default is None:
        include_default = not custom
    pieces = [DEFAULT_SYSTEM_PROMPT.strip()] if include_default else []
    if custom:
        pieces.append(custom)
    return "\n\n".join(pieces)


def workspace_note(has_workspace: bool) -> str:
    return WORKSPACE_ATTACHED_NOTE if has_workspace else NO_WORKSPACE_NOTE


def context_blocks(parts: list[ChatMessagePart]) -> list[str]:
    """The system blocks of a workspace's context parts
    (docs/workspaces.md#context-files-and-skills): the instruction files, stamped with the agent's
    OS and folder, then the ``<available-skills>`` index. Blank markers render nothing."""
    blocks = []
    files = [p for p in parts if p.type == "context-file" and (p.context_file_content or "")]
    if files:
        first = files[0]
        where = ", ".join(
            x
            for x in (
                f"operating system: {first.context_file_os}" if first.context_file_os else "",
                f"folder: {first.context_file_directory}" if first.context_file_directory else "",
            )
            if x
        )
        lines = [
            "Instructions from the workspace's instruction files"
            + (f" ({where})" if where else "")
            + ". Follow them when you work in the workspace."
        ]
        for f in files:
            truncated = ' truncated="true"' if f.context_file_truncated else ""
            lines.append(
                f'<context-file path="{f.context_file_path or ""}"{truncated}>\n'
                f"{sanitize_prompt(f.context_file_content or '')}\n</context-file>"
            )
        blocks.append("\n\n".join(lines))
    skills = [p for p in parts if p.type == "skill" and p.skill_name]
    if skills:
        index = [
            f"- {s.skill_name}: {s.skill_description}"
            if s.skill_description
            else f"- {s.skill_name}"
            for s in skills
        ]
        blocks.append(
            "\n".join(["<available-skills>", SKILLS_INDEX_INTRO, "", *index, "</available-skills>"])
        )
    return blocks


def user_instructions(custom_prompt: str) -> str:
    """The user's custom prompt as a system block (docs/loop.md#prompt-assembly, per-turn item
    3)."""
    return f"<user-instructions>\n{custom_prompt}\n</user-instructions>"


def text_part(text: str) -> ChatMessagePart:
    return ChatMessagePart(type="text", text=text)


def initial_title(content: list[ChatMessagePart]) -> str:
    """The first six words of the first text, plus "…" when cut, at most 80 characters;
    "New Chat" when there is no text (docs/loop.md#titles)."""
    text = next((p.text for p in content if p.type == "text" and (p.text or "").strip()), "")
    words = (text or "").split()
    if not words:
        return "New Chat"
    title = " ".join(words[:6])
    if len(words) > 6 or len(title) > 80:
        return title[:79].rstrip() + "…"
    return title
