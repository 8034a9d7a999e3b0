"""The coderchat agent runtime: runs inside a workspace kernel
(docs/workspaces.md#agents, docs/workspaces.md#tools, docs/workspaces.md#context-files-and-skills).

Standard library only. The daemon executes this file into a private module
(``sys.modules["_coderchat_agent_runtime"]``), never into the user's namespace, and calls
``call(call_id, op, args_json)`` with ``execute_request``s, possibly from several kernel
subshells (threads) at once. Each call publishes exactly one ``display_data`` with MIME type
``application/vnd.coderchat.agent-result+json``: ``{"ok": true, "result": ...}`` or ``{"ok":
false, "error": "..."}``. Long output (``execute``) is written to ``sys.stdout`` from the
calling thread while it runs, so the kernel sends it as ``stream`` messages of that request.

Relative paths are relative to the workspace folder: the kernel's working directory when the
runtime was injected (for an attached notebook kernel, the notebook's folder). Every path an
operation takes must stay inside it once symbolic links are followed; others are refused with
an error the model can act on. ``configure`` (called at each injection) can put ``execute``,
background processes and ``git_status`` in a bubblewrap sandbox. Operations and their
contracts: see the functions in ``OPERATIONS``.
"""

from __future__ import annotations

import builtins
import codecs
import contextlib
import difflib
import inspect
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

RESULT_MIME = "application/vnd.coderchat.agent-result+json"
ROOT = os.path.realpath(os.getcwd())
"""The workspace folder (the kernel's working directory at injection, symbolic links
resolved): no operation reaches a path outside it."""

# read_file limits (upstream workspacesdk's read-file-lines defaults, docs/workspaces.md#tools).
MAX_FILE_BYTES = 10 << 20
MAX_LINE_BYTES = 1024
MAX_RESPONSE_LINES = 2000
MAX_RESPONSE_BYTES = 64 << 10
LINE_TRUNCATED = "... [truncated]"

# execute (docs/workspaces.md#tools).
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 4 * 3600.0
DEFAULT_WAIT_TIMEOUT = 10.0
HEAD_BYTES = 16 << 10
TAIL_BYTES = 16 << 10
"""Output kept for the model: the first 16 KiB and the last 16 KiB (32 KiB in all)."""
MAX_STREAM_BYTES = 4 << 20
"""Output streamed live per call at most; the rest is only in the result's head and tail."""
NON_INTERACTIVE_ENV = {
    "CODERCHAT_AGENT": "true",
    "GIT_EDITOR": "true",
    "GIT_SEQUENCE_EDITOR": "true",
    "EDITOR": "true",
    "VISUAL": "true",
    "GIT_TERMINAL_PROMPT": "0",
    "NO_COLOR": "1",
    "TERM": "dumb",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
}
FILE_DUMP_PATTERNS = [
    re.compile(r"^cat\s+"),
    re.compile(r"^(rg|grep)\s+.*--include-all"),
    re.compile(r"^(rg|grep)\s+-l\s+"),
]
FILE_DUMP_NOTE = "Consider using read_file instead of dumping file contents with shell commands."

# The bubblewrap sandbox of commands (``configure``).
SANDBOX_PACKAGE = "bubblewrap"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
"""Mounted read-only in the sandbox (when they exist): what programs need to run."""
ETC_SECRETS = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    "/etc/ssl/private",
    "/etc/krb5.keytab",
    "/etc/jupyter",
)
"""Hidden under an empty file or folder in the sandbox's ``/etc``: credentials, and the
system-wide Jupyter configuration (which may hold the server's token or password)."""

# Context files and skills (docs/workspaces.md#context-files-and-skills).
CONTEXT_FILES = ("AGENTS.md",)
MAX_CONTEXT_FILE_BYTES = 64 << 10
SKILLS_DIR = os.path.join(".agents", "skills")
SKILL_META_FILE = "SKILL.md"
MAX_SKILL_META_BYTES = 64 << 10
MAX_SKILL_FILE_BYTES = 512 << 10
MAX_SKILL_DESCRIPTION = 1024


class OpError(Exception):
    """An operation failed; the message goes to the model as the call's error."""


# --- calls ----------------------------------------------------------------------------------

_calls: dict[str, threading.Event] = {}
_calls_lock = threading.Lock()
_local = threading.local()


def call(call_id: str, op: str, args_json: str) -> None:
    """Run operation ``op`` with the JSON object ``args_json`` and publish its result."""
    cancel = threading.Event()
    with _calls_lock:
        _calls[call_id] = cancel
    _local.cancel = cancel
    try:
        fn = OPERATIONS.get(op)
        if fn is None:
            raise OpError(f"unknown operation {op!r}")
        args = json.loads(args_json)
        if not isinstance(args, dict):
            raise OpError("arguments must be a JSON object")
        try:
            inspect.signature(fn).bind(**args)
        except TypeError as exc:
            raise OpError(f"invalid arguments for {op}: {exc}") from None
        payload: dict[str, Any] = {"ok": True, "result": fn(**args)}
    except OpError as exc:
        payload = {"ok": False, "error": str(exc)}
    except KeyboardInterrupt:
        payload = {"ok": False, "error": "the operation was interrupted"}
    except Exception as exc:
        payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        with _calls_lock:
            _calls.pop(call_id, None)
        _local.cancel = None
    _publish(payload)


def _publish(payload: dict[str, Any]) -> None:
    _flush_stdout()
    get_ipython = getattr(builtins, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    if shell is None or getattr(shell, "display_pub", None) is None:
        raise RuntimeError("the coderchat agent runtime needs an IPython-compatible kernel")
    shell.display_pub.publish(data={RESULT_MIME: payload}, metadata={})


def _flush_stdout() -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()


def _cancelled() -> threading.Event:
    event = getattr(_local, "cancel", None)
    return event if event is not None else threading.Event()


def hello(sandbox: dict[str, Any] | None = None) -> None:
    """Apply the ``sandbox`` setting (see :func:`configure`) and publish what the daemon
    records about this agent (called at each injection); a sandbox that cannot run is
    published as the error."""
    try:
        configure(sandbox)
    except OpError as exc:
        _publish({"ok": False, "error": str(exc)})
        return
    _publish(
        {
            "ok": True,
            "result": {
                "version": globals().get("RUNTIME_VERSION", ""),
                "pid": os.getpid(),
                "cwd": ROOT,
                "os": platform.system().lower(),
                "hostname": socket.gethostname(),
                "python": platform.python_version(),
                "sandbox": "bubblewrap" if _sandbox is not None else "none",
            },
        }
    )


def cancel(call_id: str | None = None) -> dict[str, Any]:
    """Cancel the running call ``call_id`` (all running calls when None): a foreground
    ``execute`` kills its command, a ``process_output`` wait returns. → ``{cancelled: n}``."""
    with _calls_lock:
        events = (
            list(_calls.values()) if call_id is None else [e for e in [_calls.get(call_id)] if e]
        )
    for event in events:
        event.set()
    return {"cancelled": len(events)}


# --- paths and files ------------------------------------------------------------------------


def _inside_root(real: str) -> bool:
    root = os.path.realpath(ROOT)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _resolve(path: str) -> str:
    """The real path of ``path`` (``~`` expanded, relative to the workspace root), its symbolic
    links followed as far as it exists. Raises :class:`OpError` when that is outside the root:
    a ``..`` escape, an absolute path elsewhere, or a link inside the root that leads out."""
    full = os.path.normpath(os.path.join(ROOT, os.path.expanduser(path)))
    real = os.path.realpath(full)
    if _inside_root(real):
        return real
    root = os.path.realpath(ROOT)
    if _inside_root(full):
        raise OpError(
            f'Path "{path}" is outside the workspace root {root}: a symbolic link in it leads '
            f"to {real}. Only files inside the workspace folder can be used."
        )
    raise OpError(
        f'Path "{path}" is outside the workspace root {root}. Use a path inside the workspace '
        "folder (relative paths are relative to it)."
    )


def _confined(path: str) -> str | None:
    """The real path of ``path`` when it is inside the workspace root, else None (for files
    the runtime reads on its own, such as ``AGENTS.md``, which are skipped when they lead
    out)."""
    real = os.path.realpath(path)
    return real if _inside_root(real) else None


def _open_read(full: str) -> Any:
    """Open the resolved path ``full`` for reading, refusing a final component that became a
    symbolic link since it was resolved (a background command may race the check)."""
    return os.fdopen(os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")


def _atomic_write(path: str, data: bytes) -> None:
    """Write through a temporary file in the same folder and rename it over ``path``,
    keeping an existing file's permissions."""
    directory = os.path.dirname(path) or "."
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = os.stat(path).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _open_error(exc: OSError, path: str) -> OpError:
    if isinstance(exc, FileNotFoundError):
        return OpError(f"file does not exist: {path}")
    if isinstance(exc, PermissionError):
        return OpError(f"permission denied: {path}")
    return OpError(f"open file: {exc}")


def read_file(path: str = "", offset: int | None = None, limit: int | None = None) -> Any:
    """Line-numbered content (``N\\t<line>``) of a file, or a non-recursive listing of a
    folder (``N\\t<name>[/]``). ``offset`` is a 1-based line (entry), ``limit`` a count
    (default 2000). → ``{content, file_size, total_lines, lines_read}`` or ``{content,
    is_directory: true, absolute_path, entries, entries_read, total_entries, truncated}``."""
    if not path:
        raise OpError("path is required")
    full = _resolve(path)
    start = max(int(offset or 1), 1)
    count = int(limit) if limit and int(limit) > 0 else MAX_RESPONSE_LINES
    try:
        if os.path.isdir(full):
            return _list_directory(full, start, count)
        with _open_read(full) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise OpError(
                    f"file is {size} bytes which exceeds the maximum of {MAX_FILE_BYTES} bytes. "
                    "Use grep, sed, or awk to extract the content you need, or use offset and "
                    "limit to read a portion."
                )
            data = f.read()
    except OSError as exc:
        raise _open_error(exc, path) from None
    text = data.decode("utf-8", errors="replace")
    if not text:
        return {"content": "", "file_size": size, "total_lines": 0, "lines_read": 0}
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    total = len(lines)
    if start > total:
        raise OpError(f"offset {start} is beyond the file length of {total} lines")
    numbered: list[str] = []
    used = 0
    for index in range(start - 1, min(start - 1 + count, total)):
        line = lines[index].rstrip("\r")
        if len(line.encode("utf-8")) > MAX_LINE_BYTES:
            line = line.encode("utf-8")[:MAX_LINE_BYTES].decode("utf-8", "ignore") + LINE_TRUNCATED
        entry = f"{index + 1}\t{line}"
        used += len(entry.encode("utf-8")) + (1 if numbered else 0)
        if used > MAX_RESPONSE_BYTES:
            raise OpError(
                f"output would exceed {MAX_RESPONSE_BYTES} bytes. Read less at a time using "
                "offset and limit parameters."
            )
        numbered.append(entry)
    return {
        "content": "\n".join(numbered),
        "file_size": size,
        "total_lines": total,
        "lines_read": len(numbered),
    }


def _list_directory(full: str, start: int, count: int) -> dict[str, Any]:
    with os.scandir(full) as it:
        entries = [(e.name, e.is_dir()) for e in it]
    entries.sort(key=lambda e: (not e[1], e[0].lower(), e[0]))
    total = len(entries)
    result: dict[str, Any] = {
        "content": "",
        "is_directory": True,
        "absolute_path": full,
        "entries": [],
        "entries_read": 0,
        "total_entries": total,
        "truncated": False,
    }
    if total == 0:
        return result
    if start > total:
        raise OpError(f"offset {start} is beyond the directory length of {total} entries")
    chosen = entries[start - 1 : start - 1 + count]
    lines: list[str] = []
    used = 0
    for i, (name, is_dir) in enumerate(chosen):
        line = f"{start + i}\t{name}{'/' if is_dir else ''}\n"
        if used + len(line.encode("utf-8")) > MAX_RESPONSE_BYTES:
            break
        used += len(line.encode("utf-8"))
        lines.append(line)
    read = len(lines)
    result.update(
        content="".join(lines),
        entries=[
            {"name": name, "is_dir": is_dir, "absolute_path": os.path.join(full, name)}
            for name, is_dir in chosen[:read]
        ],
        entries_read=read,
        truncated=start - 1 + read < total,
    )
    return result


def write_file(path: str = "", content: str = "", encoding: str = "utf-8") -> dict[str, Any]:
    """Write ``content`` (``encoding`` ``utf-8`` or ``base64``) atomically, creating parent
    folders. → ``{"ok": true}``."""
    import base64

    if not path:
        raise OpError("path is required")
    full = _resolve(path)
    if encoding == "base64":
        data = base64.b64decode(content)
    elif encoding == "utf-8":
        data = content.encode("utf-8")
    else:
        raise OpError(f'encoding must be "utf-8" or "base64", got "{encoding}"')
    if os.path.isdir(full):
        raise OpError(f"open {path}: is a directory")
    try:
        os.makedirs(os.path.dirname(full), exist_ok=True)
        # Again: a folder a background command made a link out meanwhile is refused.
        full = _resolve(path)
        _atomic_write(full, data)
    except OSError as exc:
        raise OpError(f"write {path}: {exc.strerror or exc}") from None
    return {"ok": True}


def _replace(content: str, search: str, replace: str, replace_all: bool) -> str:
    """Search/replace with Coder's cascade: exact, then per line ignoring trailing
    whitespace, then ignoring indentation. Exactly one match unless ``replace_all``."""
    if search in content:
        if replace_all:
            return content.replace(search, replace)
        count = content.count(search)
        if count > 1:
            raise OpError(_ambiguous(count))
        return content.replace(search, replace, 1)
    content_lines = content.splitlines(keepends=True)
    search_lines = search.splitlines(keepends=True)
    for eq in (
        lambda a, b: a.rstrip(" \t\r\n") == b.rstrip(" \t\r\n"),
        lambda a, b: a.strip() == b.strip(),
    ):
        matches = _line_matches(content_lines, search_lines, eq)
        if not matches:
            continue
        if len(matches) > 1 and not replace_all:
            raise OpError(_ambiguous(len(matches)))
        for start in reversed(matches):
            end = start + len(search_lines)
            tail = replace
            if not replace.endswith("\n") and content_lines[end - 1].endswith("\n"):
                tail = replace + "\n"
            content_lines[start:end] = [tail]
        return "".join(content_lines)
    raise OpError(
        "search string not found in file. Verify the search string matches the file content "
        "exactly, including whitespace and indentation"
    )


def _ambiguous(count: int) -> str:
    return (
        f"search string matches {count} occurrences (expected exactly 1). Include more "
        "surrounding context to make the match unique, or set replace_all to true"
    )


def _line_matches(
    content: list[str], search: list[str], eq: Callable[[str, str], bool]
) -> list[int]:
    if not search or len(search) > len(content):
        return []
    matches = []
    i = 0
    while i <= len(content) - len(search):
        if all(eq(content[i + j], s) for j, s in enumerate(search)):
            matches.append(i)
            i += len(search)
        else:
            i += 1
    return matches


def edit_files(files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Apply ``[{path, edits: [{search, replace, replace_all?}]}]``: every edit is checked
    before any file is written, so a batch applies entirely or not at all. → ``{"ok": true,
    "files": [{path, diff}]}`` (unified diffs)."""
    if not files:
        raise OpError("files is required")
    errors: list[str] = []
    pending: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    for i, entry in enumerate(files):
        path = str((entry or {}).get("path") or "").strip()
        edits = (entry or {}).get("edits") or []
        if not path:
            raise OpError(
                f"files[{i}].path is required; provide the path of the file to edit; no files "
                "in this batch were applied"
            )
        if not edits:
            raise OpError(
                f"files[{i}].edits must contain at least one edit; no files in this batch were "
                "applied"
            )
        try:
            full = _resolve(path)
        except OpError as exc:
            errors.append(str(exc))
            continue
        if full in seen:
            errors.append(f"{path}: duplicate file path in request")
            continue
        seen.add(full)
        try:
            if os.path.isdir(full):
                raise OpError(f"open {path}: not a file")
            with _open_read(full) as f:
                original = f.read().decode("utf-8")
        except OSError as exc:
            errors.append(str(_open_error(exc, path)))
            continue
        except UnicodeDecodeError:
            errors.append(f"edit {path}: the file is not UTF-8 text")
            continue
        except OpError as exc:
            errors.append(str(exc))
            continue
        content = original
        try:
            for edit in edits:
                content = _replace(
                    content,
                    str(edit.get("search", "")),
                    str(edit.get("replace", "")),
                    bool(edit.get("replace_all")),
                )
        except OpError as exc:
            errors.append(f"edit {path}: {exc}")
            continue
        pending.append((path, full, original, content))
    if errors:
        raise OpError("\n".join([*errors, "no files in this batch were applied"]))
    results = []
    for path, full, original, content in pending:
        try:
            _atomic_write(full, content.encode("utf-8"))
        except OSError as exc:
            raise OpError(f"write {path}: {exc.strerror or exc}") from None
        diff = "".join(
            difflib.unified_diff(
                original.splitlines(keepends=True),
                content.splitlines(keepends=True),
                fromfile=f"a/{path}",
                tofile=f"b/{path}",
            )
        )
        results.append({"path": path, "diff": diff})
    return {"ok": True, "files": results}


# --- sandbox --------------------------------------------------------------------------------

_sandbox: list[str] | None = None
"""The bubblewrap command line commands run under (up to the ``--chdir``), or None."""
_sandbox_error: str | None = None
"""Why every command is refused: the sandbox asked for cannot run (fail closed, whatever the
daemon does next with this kernel)."""


def configure(sandbox: dict[str, Any] | None = None) -> None:
    """Set how commands (``execute``, background processes, ``git_status``) run.

    ``sandbox`` is the template's setting: None or ``{"mode": "none"}`` runs them as the
    kernel's user sees the machine; ``{"mode": "bubblewrap", "network": bool, "read_only":
    [absolute paths]}`` runs them under ``bwrap`` with the workspace folder the only writable
    place, the system folders (``SYSTEM_DIRS`` minus ``ETC_SECRETS``), the Python installation
    and ``read_only`` mounted read-only, fresh ``/tmp``, home folder (empty), ``/dev`` and
    ``/proc`` (new PID namespace: no other process is visible) and, with ``network`` false,
    no network. Raises :class:`OpError` when ``bwrap`` is not on the kernel's ``PATH`` or
    cannot create a sandbox here; commands are then refused with that message."""
    global _sandbox, _sandbox_error
    try:
        _sandbox, _sandbox_error = _sandbox_command(sandbox), None
    except OpError as exc:
        _sandbox, _sandbox_error = None, str(exc)
        raise


def _sandbox_command(sandbox: dict[str, Any] | None) -> list[str] | None:
    mode = (sandbox or {}).get("mode", "none")
    if mode == "none":
        return None
    if mode != "bubblewrap":
        raise OpError(f'unknown sandbox mode "{mode}" (expected "none" or "bubblewrap")')
    assert sandbox is not None
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise OpError(
            'the template runs commands in a sandbox ([sandbox] mode = "bubblewrap") but bwrap '
            f"is not on the kernel's PATH: install the {SANDBOX_PACKAGE} package (Debian or "
            f"Ubuntu: apt-get install {SANDBOX_PACKAGE}) where the kernel runs"
        )
    argv = [bwrap, *_bwrap_args(bool(sandbox.get("network", True)), sandbox.get("read_only"))]
    try:
        probe = subprocess.run(
            [*argv, "--chdir", ROOT, "--", "true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OpError(f"the bubblewrap sandbox cannot run: {exc}") from None
    if probe.returncode != 0:
        raise OpError(
            f"the bubblewrap sandbox cannot run here: {probe.stderr.strip() or probe.returncode}"
            " (bwrap needs unprivileged user namespaces, or to be installed setuid)"
        )
    return argv


def _bwrap_args(network: bool, read_only: Any) -> list[str]:
    """bwrap options for the sandbox :func:`configure` describes; later mounts go over earlier
    ones, so the workspace comes last (it may lie under the home folder or ``/tmp``)."""
    args = ["--unshare-all", "--die-with-parent"]
    if network:
        args.append("--share-net")
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC_SECRETS:
        if os.path.islink(path) or not os.path.lexists(path):
            continue
        args += ["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    home = os.path.expanduser("~")
    if home != "/" and os.path.isdir(home):
        args += ["--tmpfs", home]
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    prefixes.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    extra = [str(p) for p in read_only or [] if os.path.isabs(str(p))]
    for path in sorted(prefixes) + extra:
        if os.path.exists(path) and not _under_system_dir(path):
            args += ["--ro-bind", path, path]
    root = os.path.realpath(ROOT)
    args += ["--bind", root, root]
    return args


def _under_system_dir(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == d or real.startswith(d + os.sep) for d in SYSTEM_DIRS)


def _command(argv: list[str], cwd: str) -> list[str]:
    """``argv`` as run in ``cwd``: inside the sandbox when one is configured. Raises
    :class:`OpError` when the sandbox asked for cannot run."""
    if _sandbox_error is not None:
        raise OpError(_sandbox_error)
    if _sandbox is None:
        return argv
    return [*_sandbox, "--chdir", cwd, "--", *argv]


# --- processes ------------------------------------------------------------------------------


class _HeadTail:
    """The first ``HEAD_BYTES`` and the last ``TAIL_BYTES`` of a byte stream (Coder's
    HeadTailBuffer)."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def write(self, data: bytes) -> None:
        self.total += len(data)
        room = HEAD_BYTES - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > TAIL_BYTES:
                del self.tail[: len(self.tail) - TAIL_BYTES]

    def output(self) -> tuple[str, bool]:
        """The text for the model and whether bytes were left out."""
        head = bytes(self.head).decode("utf-8", "replace")
        if not self.tail:
            return head, False
        omitted = self.total - len(self.head) - len(self.tail)
        tail = bytes(self.tail).decode("utf-8", "replace")
        if omitted <= 0:
            return head + tail, False
        return f"{head}\n\n... [omitted {omitted} bytes] ...\n\n{tail}", True


class _Process:
    def __init__(
        self, proc_id: str, command: str, work_dir: str, background: bool, popen: Any
    ) -> None:
        self.id = proc_id
        self.command = command
        self.work_dir = work_dir
        self.background = background
        self.popen = popen
        self.started = time.time()
        self.exited: float | None = None
        self.exit_code: int | None = None
        self.buffer = _HeadTail()
        self.chunks: list[bytes] = []
        """Output not yet streamed to a foreground call."""
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, name=f"coderchat-proc-{proc_id}")
        self.reader.daemon = True
        self.reader.start()

    def _read(self) -> None:
        stream = self.popen.stdout
        fd = stream.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            with self.cond:
                self.buffer.write(data)
                if not self.background:
                    self.chunks.append(data)
                self.cond.notify_all()
        code = self.popen.wait()
        stream.close()
        with self.cond:
            self.exit_code = code
            self.exited = time.time()
            self.cond.notify_all()

    @property
    def running(self) -> bool:
        return self.exited is None

    def wait(self, timeout: float, cancel: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.running and not cancel.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.cond.wait(min(remaining, 0.25))

    def signal(self, signum: int) -> None:
        try:
            os.killpg(self.popen.pid, signum)
        except (ProcessLookupError, PermissionError, AttributeError):
            self.popen.send_signal(signum)

    def result(self) -> dict[str, Any]:
        with self.cond:
            output, truncated = self.buffer.output()
        result: dict[str, Any] = {"output": output}
        if truncated:
            result["truncated"] = True
        return result

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": self.id,
            "command": self.command,
            "work_dir": self.work_dir,
            "background": self.background,
            "running": self.running,
            "started_at": _iso(self.started),
        }
        if not self.running:
            info["exit_code"] = self.exit_code
            info["exited_at"] = _iso(self.exited or 0)
        return info


_processes: dict[str, _Process] = {}
_processes_lock = threading.Lock()


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)?")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string ("10s", "1m30s", "250ms", "0"); raises ``ValueError``
    with Go's messages."""
    s = text.strip()
    original = s
    sign = 1.0
    if s[:1] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f'time: invalid duration "{original}"')
    total = 0.0
    while s:
        match = _DURATION_PART.match(s)
        if match is None:
            raise ValueError(f'time: invalid duration "{original}"')
        number, unit = match.groups()
        if unit is None:
            rest = s[match.end() :]
            if rest:
                raise ValueError(f'time: unknown unit "{rest}" in duration "{original}"')
            raise ValueError(f'time: missing unit in duration "{original}"')
        total += float(number) * _DURATION_UNITS[unit]
        s = s[match.end() :]
    return sign * total


def format_duration(seconds: float) -> str:
    """``seconds`` as Go prints a duration: "10s", "2m0s", "1h30m0s", "1.5s", "250ms"."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    secs_text = f"{round(secs, 9):g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{secs_text}"
    if minutes:
        return f"{int(minutes)}m{secs_text}"
    return secs_text


def _start(command: str, workdir: str | None, background: bool) -> _Process:
    env = dict(os.environ)
    env.update(NON_INTERACTIVE_ENV)
    cwd = _resolve(workdir) if workdir else ROOT
    if _sandbox is not None:
        # The kernel's temporary folder may be elsewhere; the sandbox has its own /tmp.
        env["TMPDIR"] = "/tmp"
        # The kernel's own guard (the provisioner sets it); commands get Python's usual path.
        env.pop("PYTHONSAFEPATH", None)
    popen = subprocess.Popen(
        _command(["sh", "-c", command], cwd),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    proc = _Process(secrets.token_hex(4), command, cwd, background, popen)
    with _processes_lock:
        _processes[proc.id] = proc
    return proc


def execute(
    command: str = "",
    timeout: str | None = None,
    workdir: str | None = None,
    run_in_background: bool | None = None,
) -> dict[str, Any]:
    """Run ``command`` under ``sh -c`` in the workspace (docs/workspaces.md#tools ``execute``).

    Foreground: waits up to ``timeout`` (Go duration, default 10s, at most 4h), streaming
    output; → ``{success, output, exit_code, wall_duration_ms, truncated?, note?}``. When the
    timeout passes the command keeps running: → ``{success: false, exit_code: -1, error:
    "command timed out after <d>", background_process_id, output}``. Background (or a
    trailing ``&``): → ``{success: true, background_process_id}``. A start failure →
    ``{success: false, exit_code: -1, error: "start process: ..."}``.
    """
    if not command or not command.strip():
        raise OpError("command is required")
    background = bool(run_in_background)
    trimmed = command.strip()
    # A model's "cmd &" would fork an untracked orphan: run it as a tracked background process.
    if not background and trimmed.endswith("&") and not trimmed.endswith(("&&", "|&")):
        background = True
        command = trimmed[:-1].strip()
    wait = DEFAULT_TIMEOUT
    if timeout is not None and not background:
        try:
            wait = parse_duration(timeout)
        except ValueError as exc:
            raise OpError(f'invalid timeout "{timeout}": {exc}') from None
        if wait <= 0:
            raise OpError(f'timeout must be positive, got "{timeout}"')
    wait = min(wait, MAX_TIMEOUT)
    started = time.monotonic()
    try:
        proc = _start(command, workdir, background)
    except OSError as exc:
        return {"success": False, "exit_code": -1, "error": f"start process: {exc}"}
    if background:
        return {"success": True, "background_process_id": proc.id}
    cancel = _cancelled()
    streamed = 0
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    deadline = started + wait
    try:
        while True:
            with proc.cond:
                while proc.running and not proc.chunks and not cancel.is_set():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    proc.cond.wait(min(remaining, 0.25))
                chunks, proc.chunks = proc.chunks, []
                running = proc.running
            for chunk in chunks:
                if streamed < MAX_STREAM_BYTES:
                    streamed += len(chunk)
                    text = decoder.decode(chunk)
                    if text:
                        sys.stdout.write(text)
            if chunks:
                _flush_stdout()
            if not running and not chunks:
                break
            if cancel.is_set():
                proc.signal(signal.SIGKILL)
                proc.wait(5, threading.Event())
                result = proc.result()
                result.update(success=False, exit_code=-1, error="command was cancelled")
                return _with_duration(result, started)
            if running and time.monotonic() >= deadline:
                # Timed out: the command keeps running as a background process.
                with proc.cond:
                    proc.background = True
                    proc.chunks = []
                result = proc.result()
                result.update(
                    success=False,
                    exit_code=-1,
                    error=f"command timed out after {format_duration(wait)}",
                    background_process_id=proc.id,
                )
                return _with_duration(result, started)
    except KeyboardInterrupt:
        proc.signal(signal.SIGKILL)
        raise
    result = proc.result()
    code = proc.exit_code if proc.exit_code is not None else -1
    result.update(success=code == 0, exit_code=code)
    if any(p.search(trimmed) for p in FILE_DUMP_PATTERNS):
        result["note"] = FILE_DUMP_NOTE
    return _with_duration(result, started)


def _with_duration(result: dict[str, Any], started: float) -> dict[str, Any]:
    result["wall_duration_ms"] = int((time.monotonic() - started) * 1000)
    if not result.get("output"):
        result.pop("output", None)
    return result


def _process(process_id: str) -> _Process:
    with _processes_lock:
        proc = _processes.get(process_id)
    if proc is None:
        raise OpError(f"process {process_id} not found")
    return proc


def process_output(process_id: str = "", wait_timeout: str | None = None) -> dict[str, Any]:
    """Output of a tracked process, after waiting up to ``wait_timeout`` (default 10s, "0s":
    at once) for it to exit. → the ``execute`` result; while running ``success: true`` and
    ``note: "process is still running"``."""
    if not process_id:
        raise OpError("process_id is required")
    wait = DEFAULT_WAIT_TIMEOUT
    if wait_timeout is not None:
        try:
            wait = parse_duration(wait_timeout)
        except ValueError as exc:
            raise OpError(f'invalid wait_timeout "{wait_timeout}": {exc}') from None
    proc = _process(process_id)
    if wait > 0:
        proc.wait(min(wait, MAX_TIMEOUT), _cancelled())
    result = proc.result()
    if proc.running:
        result.update(success=True, note="process is still running")
    else:
        code = proc.exit_code if proc.exit_code is not None else -1
        result.update(success=code == 0, exit_code=code)
    result["wall_duration_ms"] = int(((proc.exited or time.time()) - proc.started) * 1000)
    if not result.get("output"):
        result.pop("output", None)
    return result


def process_list() -> dict[str, Any]:
    """→ ``{processes: [{id, command, work_dir, background, running, started_at,
    exit_code?, exited_at?}]}``, oldest first."""
    with _processes_lock:
        procs = sorted(_processes.values(), key=lambda p: p.started)
    return {"processes": [p.info() for p in procs]}


def process_signal(process_id: str = "", signal: str = "") -> dict[str, Any]:
    """Send ``terminate`` (SIGTERM) or ``kill`` (SIGKILL) to a tracked process and its
    children. → ``{success: true, message}`` or ``{success: false, error: "signal process:
    ..."}``."""
    import signal as signals

    if not process_id:
        raise OpError("process_id is required")
    if signal not in ("terminate", "kill"):
        raise OpError('signal must be "terminate" or "kill"')
    try:
        proc = _process(process_id)
    except OpError as exc:
        return {"success": False, "error": f"signal process: {exc}"}
    if not proc.running:
        return {"success": False, "error": f"signal process: process {process_id} has exited"}
    proc.signal(signals.SIGTERM if signal == "terminate" else signals.SIGKILL)
    return {"success": True, "message": f'signal "{signal}" sent to process {process_id}'}


# --- context files and skills ---------------------------------------------------------------


def _read_limited(path: str, limit: int) -> tuple[str, bool]:
    with _open_read(path) as f:
        data = f.read(limit + 1)
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """``key: value`` pairs between leading ``---`` lines, and the body after them."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            break
    else:
        return {}, text
    meta: dict[str, str] = {}
    for line in lines[1:end]:
        key, sep, value = line.partition(":")
        if sep and key.strip() and not line.startswith((" ", "\t")):
            meta[key.strip().lower()] = value.strip().strip("'\"")
    return meta, "\n".join(lines[end + 1 :]).lstrip("\n")


def _skills() -> list[dict[str, Any]]:
    base = _confined(os.path.join(ROOT, SKILLS_DIR))
    if base is None:
        return []
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    skills = []
    for dirname in names:
        if dirname.startswith("."):
            continue
        directory = _confined(os.path.join(base, dirname))
        if directory is None:
            continue
        meta_path = _confined(os.path.join(directory, SKILL_META_FILE))
        if meta_path is None or not os.path.isfile(meta_path):
            continue
        try:
            raw, truncated = _read_limited(meta_path, MAX_SKILL_META_BYTES)
        except OSError:
            continue
        meta, _ = _front_matter(raw)
        skills.append(
            {
                "name": meta.get("name") or dirname,
                "description": (meta.get("description") or "")[:MAX_SKILL_DESCRIPTION],
                "dir": directory,
                "meta_file": SKILL_META_FILE,
                "meta": raw,
                "truncated": truncated,
            }
        )
    return skills


def context() -> dict[str, Any]:
    """The workspace's instruction files and skills (docs/workspaces.md#context-files-and-skills). →
    ``{os, directory, files: [{path, content, truncated}], skills: [{name, description, dir,
    meta_file, meta, truncated}]}``; files over 64 KiB are cut (``truncated``)."""
    files = []
    for name in CONTEXT_FILES:
        path = os.path.join(ROOT, name)
        real = _confined(path)
        if real is None or not os.path.isfile(real):
            continue
        try:
            content, truncated = _read_limited(real, MAX_CONTEXT_FILE_BYTES)
        except OSError:
            continue
        files.append({"path": path, "content": content, "truncated": truncated})
    return {
        "os": platform.system().lower(),
        "directory": ROOT,
        "files": files,
        "skills": _skills(),
    }


def _skill(name: str) -> dict[str, Any]:
    if not name:
        raise OpError("name is required")
    for skill in _skills():
        if skill["name"] == name:
            return skill
    raise OpError(f'skill "{name}" not found')


def read_skill(name: str = "") -> dict[str, Any]:
    """A skill's instructions: ``{name, dir, body, files}`` (``files`` lists the skill
    folder without SKILL.md, folders end with "/")."""
    skill = _skill(name)
    _, body = _front_matter(skill["meta"])
    files = []
    with os.scandir(skill["dir"]) as it:
        for entry in sorted(it, key=lambda e: e.name):
            if entry.name == SKILL_META_FILE:
                continue
            files.append(entry.name + ("/" if entry.is_dir() else ""))
    return {"name": skill["name"], "dir": skill["dir"], "body": body, "files": files}


def check_skill_path(path: str) -> None:
    """Refuse skill file paths that are empty, absolute, climb out or touch hidden files
    (docs/workspaces.md#tools ``read_skill_file``)."""
    if not path:
        raise OpError("path is required")
    if path.startswith("/") or os.path.isabs(path):
        raise OpError("absolute paths are not allowed")
    for part in path.replace("\\", "/").split("/"):
        if part == "..":
            raise OpError("path traversal is not allowed")
        if part.startswith("."):
            raise OpError("hidden file components are not allowed")


def read_skill_file(name: str = "", path: str = "") -> dict[str, Any]:
    """A supporting file of a skill, at most 512 KiB: → ``{content}``."""
    if not name:
        raise OpError("name is required")
    if not path:
        raise OpError("path is required")
    check_skill_path(path)
    skill = _skill(name)
    directory = os.path.realpath(skill["dir"])
    full = os.path.realpath(os.path.join(directory, path))
    if os.path.commonpath([directory, full]) != directory:
        raise OpError("path traversal is not allowed")
    try:
        content, _ = _read_limited(full, MAX_SKILL_FILE_BYTES)
    except OSError as exc:
        raise OpError(f"read skill file: {_open_error(exc, path)}") from None
    return {"content": content}


# --- git ------------------------------------------------------------------------------------


def git_status(path: str | None = None) -> dict[str, Any]:
    """``git status`` of the repository holding ``path`` (default: the workspace). →
    ``{is_repo: false}`` or ``{is_repo: true, root, branch, files: [{path, status}]}`` where
    ``status`` is the two-letter porcelain code."""
    cwd = _resolve(path) if path else ROOT
    try:
        top = subprocess.run(
            _command(["git", "rev-parse", "--show-toplevel"], cwd),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"is_repo": False}
    if top.returncode != 0:
        return {"is_repo": False}
    # In the sandbox too: a repository's config can name programs git runs (core.fsmonitor).
    status = subprocess.run(
        _command(["git", "status", "--porcelain=v1", "--branch", "-z"], cwd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **NON_INTERACTIVE_ENV},
    )
    branch = ""
    files = []
    records = status.stdout.split("\0")
    i = 0
    while i < len(records):
        record = records[i]
        i += 1
        if not record:
            continue
        if record.startswith("## "):
            branch = record[3:].split("...")[0]
            continue
        code, file_path = record[:2], record[3:]
        if code[0] in "RC":
            i += 1  # the rename's source path follows
        files.append({"path": file_path, "status": code})
    return {"is_repo": True, "root": top.stdout.strip(), "branch": branch, "files": files}


OPERATIONS: dict[str, Callable[..., Any]] = {
    "read_file": read_file,
    "write_file": write_file,
    "edit_files": edit_files,
    "execute": execute,
    "process_output": process_output,
    "process_list": process_list,
    "process_signal": process_signal,
    "context": context,
    "read_skill": read_skill,
    "read_skill_file": read_skill_file,
    "git_status": git_status,
    "cancel": cancel,
}
