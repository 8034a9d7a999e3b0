"""The agent runtime's operations, run in-process with the workspace folder set to a temporary
directory (the kernel protocol around them is tested in ``test_agents.py``)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.workspaces import agent_runtime as rt
from tests.helpers import wait_for_sync

OpError = rt.OpError


@pytest.fixture(autouse=True)
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(rt, "ROOT", str(tmp_path))
    return tmp_path


# --- read_file -------------------------------------------------------------------------------


def test_read_file_numbers_lines_and_pages_with_offset_and_limit(root: Path) -> None:
    (root / "a.txt").write_text("one\ntwo\nthree\nfour\n")
    full = rt.read_file("a.txt")
    assert full == {
        "content": "1\tone\n2\ttwo\n3\tthree\n4\tfour",
        "file_size": 19,
        "total_lines": 4,
        "lines_read": 4,
    }
    page = rt.read_file(str(root / "a.txt"), offset=2, limit=2)
    assert page["content"] == "2\ttwo\n3\tthree"
    assert page["lines_read"] == 2


def test_read_file_errors_use_the_reference_strings(root: Path) -> None:
    (root / "a.txt").write_text("x\n")
    with pytest.raises(OpError, match=r"^path is required$"):
        rt.read_file("")
    with pytest.raises(OpError, match=r"^file does not exist: missing.txt$"):
        rt.read_file("missing.txt")
    with pytest.raises(OpError, match=r"^offset 5 is beyond the file length of 1 lines$"):
        rt.read_file("a.txt", offset=5)


def test_read_file_empty_file_and_long_lines(root: Path) -> None:
    (root / "empty").write_text("")
    assert rt.read_file("empty") == {
        "content": "",
        "file_size": 0,
        "total_lines": 0,
        "lines_read": 0,
    }
    (root / "long").write_text("x" * 5000 + "\n")
    content = rt.read_file("long")["content"]
    assert content == "1\t" + "x" * rt.MAX_LINE_BYTES + rt.LINE_TRUNCATED


def test_read_file_refuses_output_over_the_byte_budget(root: Path) -> None:
    (root / "big").write_text(("y" * 1000 + "\n") * 100)
    with pytest.raises(OpError, match=r"output would exceed 65536 bytes. Read less at a time"):
        rt.read_file("big")
    assert rt.read_file("big", limit=10)["lines_read"] == 10


def test_read_file_on_a_directory_lists_it_folders_first(root: Path) -> None:
    (root / "b.txt").write_text("")
    (root / "a.txt").write_text("")
    (root / "sub").mkdir()
    listing = rt.read_file(".")
    assert listing["is_directory"] is True
    assert listing["absolute_path"] == str(root)
    assert listing["content"] == "1\tsub/\n2\ta.txt\n3\tb.txt\n"
    assert [e["name"] for e in listing["entries"]] == ["sub", "a.txt", "b.txt"]
    assert listing["entries"][0]["is_dir"] is True
    assert (listing["entries_read"], listing["total_entries"], listing["truncated"]) == (
        3,
        3,
        False,
    )
    page = rt.read_file(".", offset=2, limit=1)
    assert page["content"] == "2\ta.txt\n"
    assert page["truncated"] is True
    with pytest.raises(OpError, match=r"^offset 9 is beyond the directory length of 3 entries$"):
        rt.read_file(".", offset=9)


# --- write_file and edit_files ---------------------------------------------------------------


def test_write_file_creates_folders_keeps_the_mode_and_leaves_no_temp_files(root: Path) -> None:
    assert rt.write_file("deep/dir/f.txt", "hello") == {"ok": True}
    target = root / "deep" / "dir" / "f.txt"
    assert target.read_text() == "hello"
    target.chmod(0o755)
    rt.write_file("deep/dir/f.txt", "again")
    assert target.read_text() == "again"
    assert target.stat().st_mode & 0o777 == 0o755
    assert os.listdir(target.parent) == ["f.txt"]


def test_write_file_base64_and_errors(root: Path) -> None:
    rt.write_file("bin", "AAEC", encoding="base64")
    assert (root / "bin").read_bytes() == b"\x00\x01\x02"
    (root / "d").mkdir()
    with pytest.raises(OpError, match=r"^path is required$"):
        rt.write_file("", "x")
    with pytest.raises(OpError, match=r"^open d: is a directory$"):
        rt.write_file("d", "x")
    with pytest.raises(OpError, match=r'^encoding must be "utf-8" or "base64", got "latin-1"$'):
        rt.write_file("x", "x", encoding="latin-1")


def test_edit_files_replaces_and_returns_diffs(root: Path) -> None:
    (root / "a.py").write_text("def f():\n    return 1\n")
    result = rt.edit_files(
        [{"path": "a.py", "edits": [{"search": "return 1", "replace": "return 2"}]}]
    )
    assert result["ok"] is True
    assert (root / "a.py").read_text() == "def f():\n    return 2\n"
    [entry] = result["files"]
    assert entry["path"] == "a.py"
    assert "-    return 1\n+    return 2\n" in entry["diff"]


def test_edit_files_tolerates_trailing_whitespace_and_indentation(root: Path) -> None:
    (root / "a.py").write_text("if x:\n    y = 1   \n    z = 2\n")
    rt.edit_files([{"path": "a.py", "edits": [{"search": "y = 1\nz = 2", "replace": "    w = 3"}]}])
    assert (root / "a.py").read_text() == "if x:\n    w = 3\n"


def test_edit_files_batch_is_atomic_and_reports_every_failure(root: Path) -> None:
    (root / "a.txt").write_text("alpha\n")
    (root / "b.txt").write_text("beta beta\n")
    with pytest.raises(OpError) as info:
        rt.edit_files(
            [
                {"path": "a.txt", "edits": [{"search": "alpha", "replace": "ALPHA"}]},
                {"path": "b.txt", "edits": [{"search": "beta", "replace": "BETA"}]},
                {"path": "c.txt", "edits": [{"search": "x", "replace": "y"}]},
                {"path": "a.txt", "edits": [{"search": "gamma", "replace": "y"}]},
            ]
        )
    lines = str(info.value).split("\n")
    assert lines == [
        "edit b.txt: search string matches 2 occurrences (expected exactly 1). Include more "
        "surrounding context to make the match unique, or set replace_all to true",
        "file does not exist: c.txt",
        "a.txt: duplicate file path in request",
        "no files in this batch were applied",
    ]
    assert (root / "a.txt").read_text() == "alpha\n"
    rt.edit_files(
        [{"path": "b.txt", "edits": [{"search": "beta", "replace": "B", "replace_all": True}]}]
    )
    assert (root / "b.txt").read_text() == "B B\n"


def test_edit_files_argument_errors(root: Path) -> None:
    (root / "a.txt").write_text("alpha\n")
    with pytest.raises(OpError, match=r"^files is required$"):
        rt.edit_files([])
    with pytest.raises(OpError, match=r"^files\[0\]\.path is required; .*were applied$"):
        rt.edit_files([{"path": " ", "edits": [{"search": "a", "replace": "b"}]}])
    with pytest.raises(OpError, match=r"^files\[0\]\.edits must contain at least one edit; "):
        rt.edit_files([{"path": "a.txt", "edits": []}])
    with pytest.raises(OpError, match=r"^edit a.txt: search string not found in file. Verify"):
        rt.edit_files([{"path": "a.txt", "edits": [{"search": "zeta", "replace": "b"}]}])


# --- execute and processes -------------------------------------------------------------------


def test_execute_runs_in_the_workspace_with_the_non_interactive_environment(root: Path) -> None:
    result = rt.execute("pwd; echo $CODERCHAT_AGENT $GIT_EDITOR $PAGER $TERM $NO_COLOR")
    assert result["success"] is True
    assert result["exit_code"] == 0
    assert result["output"] == f"{root}\ntrue true cat dumb 1\n"
    assert result["wall_duration_ms"] >= 0
    (root / "sub").mkdir()
    failed = rt.execute("pwd; echo oops >&2; exit 3", workdir=str(root / "sub"))
    assert (failed["success"], failed["exit_code"], failed["output"]) == (
        False,
        3,
        f"{root / 'sub'}\noops\n",
    )


def test_execute_notes_file_dumps() -> None:
    Path(rt.ROOT, "f").write_text("x\n")
    assert rt.execute("cat f")["note"] == rt.FILE_DUMP_NOTE
    assert rt.execute("grep -l x f")["note"] == rt.FILE_DUMP_NOTE
    assert "note" not in rt.execute("echo cat f")


def test_execute_argument_errors() -> None:
    with pytest.raises(OpError, match=r"^command is required$"):
        rt.execute("  ")
    with pytest.raises(OpError, match=r'^invalid timeout "soon": time: invalid duration "soon"$'):
        rt.execute("true", timeout="soon")
    with pytest.raises(OpError, match=r'missing unit in duration "10"$'):
        rt.execute("true", timeout="10")
    with pytest.raises(OpError, match=r'^timeout must be positive, got "0s"$'):
        rt.execute("true", timeout="0s")
    start = rt.execute("true", workdir="does/not/exist")
    assert start["success"] is False
    assert start["exit_code"] == -1
    assert start["error"].startswith("start process: ")


def test_execute_timeout_keeps_the_command_running_in_the_background() -> None:
    result = rt.execute("echo started; sleep 30", timeout="300ms")
    assert result["success"] is False
    assert result["exit_code"] == -1
    assert result["error"] == "command timed out after 300ms"
    assert result["output"] == "started\n"
    pid = result["background_process_id"]
    [info] = [p for p in rt.process_list()["processes"] if p["id"] == pid]
    assert info["running"] is True
    assert info["background"] is True
    assert rt.process_signal(pid, "kill") == {
        "success": True,
        "message": f'signal "kill" sent to process {pid}',
    }
    final = rt.process_output(pid, wait_timeout="10s")
    assert final["success"] is False
    assert final["exit_code"] == -9


def test_trailing_ampersand_becomes_a_tracked_background_process() -> None:
    started = rt.execute("sleep 0.2; echo done &")
    assert started == {"success": True, "background_process_id": started["background_process_id"]}
    pid = started["background_process_id"]
    running = rt.process_output(pid, wait_timeout="0s")
    assert running["success"] is True
    assert running["note"] == "process is still running"
    assert "exit_code" not in running
    done = rt.process_output(pid, wait_timeout="10s")
    assert (done["success"], done["exit_code"], done["output"]) == (True, 0, "done\n")
    [info] = [p for p in rt.process_list()["processes"] if p["id"] == pid]
    assert info["running"] is False
    assert info["exit_code"] == 0
    assert info["command"] == "sleep 0.2; echo done"
    assert "exited_at" in info
    assert "background_process_id" not in rt.execute("true && true")


def test_process_tools_errors() -> None:
    with pytest.raises(OpError, match=r"^process_id is required$"):
        rt.process_output("")
    with pytest.raises(OpError, match=r"^process nope not found$"):
        rt.process_output("nope")
    with pytest.raises(OpError, match=r'^invalid wait_timeout "x": '):
        rt.process_output("nope", wait_timeout="x")
    with pytest.raises(OpError, match=r'^signal must be "terminate" or "kill"$'):
        rt.process_signal("nope", "stop")
    assert rt.process_signal("nope", "kill") == {
        "success": False,
        "error": "signal process: process nope not found",
    }
    pid = rt.execute("true", run_in_background=True)["background_process_id"]
    rt.process_output(pid, wait_timeout="10s")
    assert rt.process_signal(pid, "terminate") == {
        "success": False,
        "error": f"signal process: process {pid} has exited",
    }


def test_terminate_stops_the_whole_process_group() -> None:
    pid = rt.execute("sleep 60 & sleep 60; wait", run_in_background=True)["background_process_id"]
    rt.process_signal(pid, "terminate")
    result = rt.process_output(pid, wait_timeout="10s")
    assert result["exit_code"] == -15


def test_output_is_capped_to_head_and_tail_with_a_truncated_flag() -> None:
    result = rt.execute("head -c 100000 /dev/zero | tr '\\0' a; echo; echo END")
    assert result["truncated"] is True
    output = result["output"]
    assert output.startswith("a" * 1000)
    assert output.endswith("a\nEND\n")
    assert "... [omitted " in output
    assert len(output.encode()) <= rt.HEAD_BYTES + rt.TAIL_BYTES + 100
    small = rt.execute("echo hi")
    assert "truncated" not in small


def test_cancel_kills_a_running_foreground_command() -> None:
    results: list[dict[str, Any]] = []
    ready = threading.Event()

    def run() -> None:
        cancel = threading.Event()
        rt._calls["c-test"] = cancel
        rt._local.cancel = cancel
        ready.set()
        results.append(rt.execute("sleep 30", timeout="60s"))

    thread = threading.Thread(target=run)
    thread.start()
    ready.wait()
    wait_for_sync(lambda: any(p.running for p in rt._processes.values()), "a running process")
    assert rt.cancel("c-test") == {"cancelled": 1}
    thread.join(10)
    [result] = results
    assert result["error"] == "command was cancelled"
    assert result["exit_code"] == -1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("1m30s", 90), ("250ms", 0.25), ("1.5h", 5400), ("0", 0), ("2h3m4s", 7384)],
)
def test_parse_duration_reads_go_durations(text: str, seconds: float) -> None:
    assert rt.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(10, "10s"), (120, "2m0s"), (5400, "1h30m0s"), (1.5, "1.5s"), (0.25, "250ms")],
)
def test_format_duration_prints_like_go(seconds: float, text: str) -> None:
    assert rt.format_duration(seconds) == text


# --- context and skills ----------------------------------------------------------------------


def make_skill(root: Path, name: str, meta: str, files: dict[str, str] | None = None) -> Path:
    directory = root / ".agents" / "skills" / name
    directory.mkdir(parents=True)
    (directory / "SKILL.md").write_text(meta)
    for path, content in (files or {}).items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text(content)
    return directory


def test_context_reads_agents_md_and_skill_front_matter(root: Path) -> None:
    (root / "AGENTS.md").write_text("Use pytest.\n")
    make_skill(
        root,
        "plotting",
        "---\nname: plotting\ndescription: 'Make charts'\n---\n# Plotting\nUse matplotlib.\n",
    )
    make_skill(root, "bare", "No front matter here.\n")
    (root / ".agents" / "skills" / ".hidden").mkdir()
    context = rt.context()
    assert context["directory"] == str(root)
    assert context["os"] == "linux"
    assert context["files"] == [
        {"path": str(root / "AGENTS.md"), "content": "Use pytest.\n", "truncated": False}
    ]
    skills = {s["name"]: s for s in context["skills"]}
    assert sorted(skills) == ["bare", "plotting"]
    assert skills["plotting"]["description"] == "Make charts"
    assert skills["plotting"]["dir"] == str(root / ".agents" / "skills" / "plotting")
    assert skills["bare"]["description"] == ""


def test_context_truncates_instruction_files_at_64_kib(root: Path) -> None:
    (root / "AGENTS.md").write_text("z" * (70 << 10))
    [entry] = rt.context()["files"]
    assert entry["truncated"] is True
    assert len(entry["content"]) == 64 << 10


def test_context_without_files_is_empty(root: Path) -> None:
    assert rt.context()["files"] == []
    assert rt.context()["skills"] == []


def test_read_skill_returns_body_and_supporting_files(root: Path) -> None:
    directory = make_skill(
        root,
        "review",
        "---\nname: review\ndescription: Reviews\n---\n\nStep 1.\n",
        {"roles/security.md": "be careful", "notes.txt": "n"},
    )
    assert rt.read_skill("review") == {
        "name": "review",
        "dir": str(directory),
        "body": "Step 1.\n",
        "files": ["notes.txt", "roles/"],
    }
    assert rt.read_skill_file("review", "roles/security.md") == {"content": "be careful"}
    with pytest.raises(OpError, match=r'^skill "nope" not found$'):
        rt.read_skill("nope")
    with pytest.raises(OpError, match=r"^name is required$"):
        rt.read_skill("")


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("", "path is required"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("../secret", "path traversal is not allowed"),
        ("roles/../../x", "path traversal is not allowed"),
        (".env", "hidden file components are not allowed"),
        ("roles/.hidden/x", "hidden file components are not allowed"),
    ],
)
def test_read_skill_file_path_rules(root: Path, path: str, error: str) -> None:
    make_skill(root, "review", "---\nname: review\n---\n")
    with pytest.raises(OpError, match=f"^{error}$"):
        rt.read_skill_file("review", path)


def test_read_skill_file_refuses_symlinks_out_of_the_skill(root: Path) -> None:
    directory = make_skill(root, "review", "---\nname: review\n---\n")
    (root / "secret.txt").write_text("s")
    (directory / "link").symlink_to(root / "secret.txt")
    with pytest.raises(OpError, match=r"^path traversal is not allowed$"):
        rt.read_skill_file("review", "link")


def test_read_skill_file_is_capped_at_512_kib(root: Path) -> None:
    make_skill(root, "big", "---\nname: big\n---\n", {"data.txt": "q" * (600 << 10)})
    assert len(rt.read_skill_file("big", "data.txt")["content"]) == 512 << 10


# --- git -------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_status_reports_branch_and_changed_files(root: Path) -> None:
    assert rt.git_status() == {"is_repo": False}
    rt.execute(
        "git init -q -b main && git -c user.email=a@b -c user.name=a commit -q --allow-empty "
        "-m init && echo x > new.txt"
    )
    status = rt.git_status()
    assert status["is_repo"] is True
    assert status["branch"] == "main"
    assert status["files"] == [{"path": "new.txt", "status": "??"}]


# --- sandbox ---------------------------------------------------------------------------------


@pytest.fixture
def sandboxed() -> Any:
    rt.configure({"mode": "bubblewrap", "network": False, "read_only": []})
    yield
    rt.configure(None)


def test_sandboxed_processes_are_still_signalled_timed_out_and_cancelled_as_a_group(
    root: Path, sandboxed: None
) -> None:
    command = "echo up; sleep 60 & sleep 60; wait"
    pid = rt.execute(command, run_in_background=True)["background_process_id"]
    # Once it runs: a SIGTERM while bwrap is still setting the sandbox up can be lost.
    wait_for_sync(
        lambda: rt.process_output(pid, wait_timeout="0s").get("output") == "up\n", "the output"
    )
    rt.process_signal(pid, "terminate")
    assert rt.process_output(pid, wait_timeout="10s")["exit_code"] == -15
    timed_out = rt.execute("echo begun; sleep 60", timeout="200ms")
    assert timed_out["output"] == "begun\n"
    rt.process_signal(timed_out["background_process_id"], "kill")
    waited = rt.process_output(timed_out["background_process_id"], wait_timeout="10s")
    assert waited["exit_code"] == -9
    assert rt.execute("pwd")["output"] == f"{root}\n"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_status_runs_in_the_sandbox(root: Path, sandboxed: None) -> None:
    rt.execute("git init -q -b main && echo x > new.txt")
    # A repository's config names programs git runs: in the sandbox they cannot reach out.
    outside = root.parent / f"{root.name}-fsmonitor"
    rt.execute(f"git config core.fsmonitor 'touch {outside}; false'")
    status = rt.git_status()
    assert (status["is_repo"], status["files"]) == (True, [{"path": "new.txt", "status": "??"}])
    assert not outside.exists()


def test_a_sandbox_that_cannot_run_is_refused_and_so_is_every_command_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    try:
        with pytest.raises(OpError, match=r"install the bubblewrap package") as refused:
            rt.configure({"mode": "bubblewrap"})
        # Fail closed: the kernel stays usable for the file tools, never runs a command bare.
        with pytest.raises(OpError) as execute:
            rt.execute("true")
        assert str(execute.value) == str(refused.value)
        with pytest.raises(OpError, match=r'^unknown sandbox mode "jail"'):
            rt.configure({"mode": "jail"})
    finally:
        rt.configure(None)
