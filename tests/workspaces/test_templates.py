"""Templates: ``template.toml`` checks, content hashes, versions in the database, the built-in
templates, parameter validation with one validation per field, presets."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from coderchat_ext.models import TemplateParameter
from coderchat_ext.store import Database
from coderchat_ext.store import configs as store_configs
from coderchat_ext.store import templates as store_templates
from coderchat_ext.workspaces.templates import (
    BUILTIN_TEMPLATES,
    ParameterError,
    TemplateCatalog,
    TemplateError,
    check_value,
    load_template,
    parse_manifest,
    resolve_parameters,
    template_id_for,
)


def write_template(folder: Path, manifest: str, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "template.toml").write_text(textwrap.dedent(manifest))
    for path, content in (files or {}).items():
        target = folder / "files" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    return folder


# --- the built-in templates -------------------------------------------------------------------


def test_the_builtin_python_template_is_a_blank_workspace_with_one_python_kernel() -> None:
    template = load_template(BUILTIN_TEMPLATES / "python")
    assert template.manifest.name == "python"
    assert template.files == ()
    assert [(a.name, a.kernel) for a in template.manifest.agents] == [("main", "python3")]
    assert template.manifest.init is None


def test_the_builtin_data_analysis_template_has_a_default_preset_agents_md_and_parameters() -> None:
    template = load_template(BUILTIN_TEMPLATES / "data-analysis")
    manifest = template.manifest
    paths = {f.path for f in template.files}
    assert {"AGENTS.md", "analysis.py", "data/sample.csv"} <= paths
    assert ".agents/skills/plotting/SKILL.md" in paths
    assert [p.name for p in manifest.parameters] == [
        "packages",
        "dataset_url",
        "plot_style",
        "max_rows",
    ]
    [default] = [p for p in manifest.presets if p.default]
    assert default.name == "pandas"
    assert default.parameters["packages"] == "pandas matplotlib"
    # Every preset's values pass the parameters' validation.
    for preset in manifest.presets:
        resolve_parameters(manifest.parameters, {}, preset=preset.parameters)
    assert manifest.init is not None
    assert "$PACKAGES" in manifest.init


# --- template.toml ----------------------------------------------------------------------------

MANIFEST_ERRORS = [
    pytest.param("name = 'x'\n[", "not valid TOML", id="bad-toml"),
    pytest.param("name = 'has space'", "name: Value error, must be 1-32", id="bad-name"),
    pytest.param("name = 't'\ncolor = 'red'", "color: Extra inputs are not permitted", id="extra"),
    pytest.param("name = 't'\ndaily_cost = -1", "daily_cost", id="negative-cost"),
    pytest.param(
        "name = 't'\n[[parameters]]\nname = 'p'\nrequired = true\ndefault = 'x'",
        "parameters.p: a required parameter cannot have a default",
        id="required-with-default",
    ),
    pytest.param(
        "name = 't'\n[[parameters]]\nname = 'n'\ntype = 'number'\nrequired = false",
        "parameters.n: an optional number parameter needs a default",
        id="optional-number-without-default",
    ),
    pytest.param(
        "name = 't'\n[[parameters]]\nname = '1p'\ndefault = ''",
        "parameters.1p: a parameter name must be letters",
        id="parameter-name",
    ),
    pytest.param(
        "name = 't'\n[[parameters]]\nname = 'p'\ndefault = ''\nvalidation = { regex = '(' }",
        "parameters.p: invalid validation.regex",
        id="bad-regex",
    ),
    pytest.param(
        "name = 't'\n[[parameters]]\nname = 'p'\ntype = 'number'\ndefault = 1\n"
        "validation = { regex = 'x' }",
        "validation.regex applies to string parameters only",
        id="regex-on-number",
    ),
    pytest.param(
        "name = 't'\n[[parameters]]\nname = 'p'\ntype = 'number'\ndefault = 1\n"
        "validation = { min = 5, max = 1 }",
        "validation.min is greater than validation.max",
        id="min-above-max",
    ),
    pytest.param(
        "name = 't'\n[[parameters]]\nname = 'p'\ntype = 'number'\ndefault = 0\n"
        "validation = { min = 1 }",
        "parameters.p: the default is invalid: must be at least 1, got 0",
        id="default-out-of-range",
    ),
    pytest.param(
        "name = 't'\n[[parameters]]\nname = 'p'\ndefault = 'a'\n"
        "[[presets]]\nname = 'x'\nparameters = { q = '1' }",
        "presets.x: unknown parameter 'q'",
        id="preset-unknown-parameter",
    ),
    pytest.param(
        "name = 't'\n[[parameters]]\nname = 'p'\ndefault = 'a'\noptions = ['a', 'b']\n"
        "[[presets]]\nname = 'x'\nparameters = { p = 'c' }",
        'presets.x.p: must be one of a, b, got "c"',
        id="preset-invalid-value",
    ),
    pytest.param(
        "name = 't'\n[[presets]]\nname = 'a'\ndefault = true\n"
        "[[presets]]\nname = 'b'\ndefault = true",
        "presets: at most one preset can be the default",
        id="two-default-presets",
    ),
    pytest.param(
        "name = 't'\n[[agents]]\nname = 'main'\n[[agents]]\nname = 'MAIN'",
        "agents: two agents have the same name",
        id="duplicate-agents",
    ),
    pytest.param(
        "name = 't'\nexternal = true\ninit = 'echo hi'",
        "an external template cannot have init or files/",
        id="external-with-init",
    ),
    pytest.param(
        "name = 't'\n[sandbox]\nmode = 'docker'",
        "sandbox.mode: Input should be 'none' or 'bubblewrap'",
        id="sandbox-unknown-mode",
    ),
    pytest.param(
        "name = 't'\n[sandbox]\nmode = 'bubblewrap'\nread_only = ['data']",
        "sandbox.read_only: Value error, must be absolute paths, got 'data'",
        id="sandbox-relative-read-only",
    ),
    pytest.param(
        "name = 't'\n[sandbox]\nmode = 'bubblewrap'\nnetwork = 'off'",
        "sandbox.network: Input should be a valid boolean",
        id="sandbox-network-not-a-bool",
    ),
    pytest.param(
        "name = 't'\nexternal = true\n[sandbox]\nmode = 'bubblewrap'",
        "sandbox: an external template cannot have a sandbox",
        id="external-with-sandbox",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MANIFEST_ERRORS)
def test_an_invalid_manifest_is_refused_with_what_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(TemplateError) as refused:
        parse_manifest(text)
    assert expected in str(refused.value)


def test_a_manifest_without_agents_gets_one_python_agent_and_typed_defaults_become_strings() -> (
    None
):
    manifest = parse_manifest(
        textwrap.dedent(
            """
            name = "t"
            [[parameters]]
            name = "flag"
            type = "bool"
            default = true
            [[parameters]]
            name = "ratio"
            type = "number"
            default = 2.0
            [[parameters]]
            name = "tags"
            type = "list(string)"
            default = ["a", "b"]
            [[parameters]]
            name = "note"
            required = false
            """
        )
    )
    assert [(a.name, a.kernel) for a in manifest.agents] == [("main", "python3")]
    defaults = {p.name: (p.default, p.required) for p in manifest.parameters}
    assert defaults == {
        "flag": ("true", False),
        "ratio": ("2", False),
        "tags": ('["a", "b"]', False),
        "note": ("", False),
    }


def test_a_bubblewrap_sandbox_is_kept_with_its_network_and_read_only_paths() -> None:
    manifest = parse_manifest(
        "name = 't'\n[sandbox]\nmode = 'bubblewrap'\nnetwork = false\nread_only = ['/opt/x']"
    )
    assert manifest.sandbox is not None
    assert manifest.sandbox.runtime() == {
        "mode": "bubblewrap",
        "network": False,
        "read_only": ["/opt/x"],
    }
    assert parse_manifest("name = 't'\n[sandbox]\nmode = 'bubblewrap'").sandbox.runtime() == {
        "mode": "bubblewrap",
        "network": True,
        "read_only": [],
    }


def test_without_a_sandbox_the_stored_manifest_has_no_sandbox_key() -> None:
    for text in ("name = 't'", "name = 't'\n[sandbox]\nmode = 'none'"):
        manifest = parse_manifest(text)
        assert manifest.sandbox is None
        assert "sandbox" not in manifest.stored()


# --- content hash -----------------------------------------------------------------------------


def test_the_content_hash_covers_manifest_files_and_the_executable_bit(tmp_path: Path) -> None:
    folder = write_template(tmp_path / "t", 'name = "t"\n', {"run.sh": "echo hi\n"})
    first = load_template(folder).content_hash
    assert load_template(folder).content_hash == first
    (folder / "files" / "run.sh").write_text("echo bye\n")
    second = load_template(folder).content_hash
    assert second != first
    os.chmod(folder / "files" / "run.sh", 0o755)
    third = load_template(folder)
    assert third.content_hash != second
    assert third.files[0].executable
    (folder / "template.toml").write_text('name = "t"\ndescription = "changed"\n')
    assert load_template(folder).content_hash != third.content_hash


# --- parameter values -------------------------------------------------------------------------


def param(**fields: Any) -> TemplateParameter:
    return TemplateParameter(**fields)


VALUE_CHECKS = [
    pytest.param(param(name="b", type="bool"), "yes", 'must be "true" or "false", got "yes"'),
    pytest.param(param(name="b", type="bool"), "false", None),
    pytest.param(param(name="n", type="number"), "ten", 'must be a number, got "ten"'),
    pytest.param(param(name="n", type="number"), "nan", 'must be a number, got "nan"'),
    pytest.param(
        param(name="n", type="number", validation_min=1, validation_max=5),
        "0",
        "must be at least 1, got 0",
    ),
    pytest.param(
        param(name="n", type="number", validation_min=1, validation_max=5),
        "5.5",
        "must be at most 5, got 5.5",
    ),
    pytest.param(
        param(
            name="n",
            type="number",
            validation_max=5,
            validation_error="{value} is more than {max} CPUs",
        ),
        "8",
        "8 is more than 5 CPUs",
    ),
    pytest.param(
        param(name="s", validation_regex="^[a-z]+$"), "ABC", '"ABC" does not match ^[a-z]+$'
    ),
    pytest.param(
        param(name="s", validation_regex="^[a-z]+$", validation_error="lowercase only"),
        "ABC",
        "lowercase only",
    ),
    pytest.param(
        param(
            name="s",
            options=[{"name": "A", "value": "a"}, {"name": "B", "value": "b"}],
        ),
        "c",
        'must be one of a, b, got "c"',
    ),
    pytest.param(
        param(name="l", type="list(string)"), "a,b", "must be a JSON array of strings, got 'a,b'"
    ),
    pytest.param(
        param(name="l", type="list(string)", options=[{"name": "a", "value": "a"}]),
        '["a", "z"]',
        "z not among the options a",
    ),
    pytest.param(param(name="l", type="list(string)"), '["x"]', None),
]


@pytest.mark.parametrize(("parameter", "value", "expected"), VALUE_CHECKS)
def test_a_parameter_value_is_checked_against_type_options_regex_and_range(
    parameter: TemplateParameter, value: str, expected: str | None
) -> None:
    assert check_value(parameter, value) == expected


PARAMETERS = [
    param(name="region", required=True, options=[{"name": "eu", "value": "eu"}]),
    param(name="cpus", type="number", default="2", validation_min=1, validation_max=8),
    param(name="image", default="base", mutable=False),
    param(name="debug", type="bool", default="false"),
]


def test_every_bad_parameter_gets_its_own_validation() -> None:
    with pytest.raises(ParameterError) as refused:
        resolve_parameters(
            PARAMETERS, {"cpus": "99", "debug": "maybe", "colour": "red"}, previous=None
        )
    assert refused.value.validations == [
        ("colour", "unknown parameter; the template's parameters: cpus, debug, image, region"),
        ("region", "required parameter is missing"),
        ("cpus", "must be at most 8, got 99"),
        ("debug", 'must be "true" or "false", got "maybe"'),
    ]


def test_given_values_beat_the_preset_which_beats_previous_values_and_defaults() -> None:
    values = resolve_parameters(
        PARAMETERS,
        {"region": "eu"},
        preset={"cpus": "4", "region": "us"},
        previous={"cpus": "1", "debug": "true", "image": "base"},
    )
    assert values == {"region": "eu", "cpus": "4", "image": "base", "debug": "true"}


def test_changing_an_immutable_parameter_of_an_existing_workspace_is_refused() -> None:
    previous = {"region": "eu", "cpus": "2", "image": "base", "debug": "false"}
    with pytest.raises(ParameterError) as refused:
        resolve_parameters(PARAMETERS, {"image": "gpu"}, previous=previous)
    assert refused.value.validations == [
        ("image", 'parameter is immutable: it stays "base" for this workspace')
    ]
    # A new workspace may pick any value.
    assert resolve_parameters(PARAMETERS, {"image": "gpu", "region": "eu"})["image"] == "gpu"


def test_a_new_required_parameter_is_missing_for_an_old_workspace() -> None:
    previous = {"cpus": "2", "image": "base", "debug": "false"}
    with pytest.raises(ParameterError) as refused:
        resolve_parameters(PARAMETERS, {}, previous=previous)
    assert refused.value.validations == [("region", "required parameter is missing")]


# --- the catalog: templates and versions in the database -------------------------------------


@asynccontextmanager
async def opened(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database with the ``default`` and ``research`` organizations."""
    database = Database(tmp_path / "db" / "coderchat.db")
    await database.open()
    try:
        async with database.tx() as conn:
            await store_configs.sync_organizations(conn, {"research": ["ada"]})
        yield database
    finally:
        await database.close()


async def versions(db: Database, template_id: str) -> list[str]:
    async with db.read() as conn:
        rows = await conn.fetchall(
            "SELECT id FROM template_versions WHERE template_id = ? ORDER BY created_at, id",
            (template_id,),
        )
    return [r[0] for r in rows]


async def active(db: Database, template_id: str) -> tuple[str, bool]:
    async with db.read() as conn:
        row = await conn.fetchone(
            "SELECT active_version_id, deprecated FROM templates WHERE id = ?", (template_id,)
        )
    assert row is not None
    return row[0], bool(row[1])


async def test_a_changed_template_folder_becomes_a_new_active_version(tmp_path: Path) -> None:
    async with opened(tmp_path) as db:
        folder = write_template(tmp_path / "tpl" / "t", 'name = "t"\n', {"a.txt": "one"})
        catalog = TemplateCatalog(db, [tmp_path / "tpl"])
        await catalog.refresh(force=True)
        template_id = template_id_for("default", "t")
        [first] = await versions(db, template_id)
        assert await active(db, template_id) == (first, False)

        await catalog.refresh(force=True)
        assert await versions(db, template_id) == [first]

        (folder / "files" / "a.txt").write_text("two")
        await catalog.refresh(force=True)
        [_, second] = await versions(db, template_id)
        assert await active(db, template_id) == (second, False)
        async with db.read() as conn:
            files = await store_templates.version_files(conn, second)
            old_files = await store_templates.version_files(conn, first)
        assert [(f.path, f.content) for f in files] == [("a.txt", b"two")]
        assert [(f.path, f.content) for f in old_files] == [("a.txt", b"one")]

        # Back to the first content: the first version is active again, no third version.
        (folder / "files" / "a.txt").write_text("one")
        await catalog.refresh(force=True)
        assert await versions(db, template_id) == [first, second]
        assert (await active(db, template_id))[0] == first


async def test_template_ids_are_stable_across_catalogs_and_a_removed_folder_is_deprecated(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path) as db:
        folder = write_template(tmp_path / "tpl" / "t", 'name = "t"\n')
        await TemplateCatalog(db, [tmp_path / "tpl"]).refresh(force=True)
        again = TemplateCatalog(db, [tmp_path / "tpl"])
        await again.refresh(force=True)
        async with db.read() as conn:
            ids = [r[0] for r in await conn.fetchall("SELECT id FROM templates")]
        assert ids == [template_id_for("default", "t")]
        shutil.rmtree(folder)
        await again.refresh(force=True)
        assert (await active(db, ids[0]))[1] is True
        async with db.read() as conn:
            assert await store_templates.list_templates(conn, ["x"]) == []
            assert await store_templates.existing_ids(conn, ids) == set()


async def test_a_template_path_overrides_a_builtin_and_a_broken_folder_is_reported(
    tmp_path: Path,
) -> None:
    async with opened(tmp_path) as db:
        write_template(tmp_path / "mine" / "python", 'name = "python"\ndescription = "Mine."\n')
        write_template(tmp_path / "mine" / "broken", 'name = "broken"\nbogus = 1\n')
        write_template(tmp_path / "mine" / "lab", 'name = "lab"\norganization = "research"\n')
        write_template(tmp_path / "mine" / "lost", 'name = "lost"\norganization = "nowhere"\n')
        catalog = TemplateCatalog(db, [BUILTIN_TEMPLATES, tmp_path / "mine"])
        await catalog.refresh(force=True)
        async with db.read() as conn:
            rows = await conn.fetchall(
                "SELECT o.name, t.name, t.description FROM templates t"
                " JOIN organizations o ON o.id = t.organization_id"
            )
        found = {(r[0], r[1]): r[2] for r in rows}
        assert found[("default", "python")] == "Mine."
        assert ("research", "lab") in found
        assert ("default", "data-analysis") in found
        assert not any(name in ("broken", "lost") for _, name in found)
        assert (
            "bogus: Extra inputs are not permitted"
            in catalog.problems[str(tmp_path / "mine" / "broken")]
        )
        assert catalog.problems[str(tmp_path / "mine" / "lost")] == "unknown organization 'nowhere'"


async def test_refresh_is_throttled_unless_forced(tmp_path: Path) -> None:
    async with opened(tmp_path) as db:
        now = [100.0]
        catalog = TemplateCatalog(db, [tmp_path / "tpl"], refresh_interval=5, clock=lambda: now[0])
        await catalog.refresh()
        write_template(tmp_path / "tpl" / "t", 'name = "t"\n')
        await catalog.refresh()
        async with db.read() as conn:
            assert await conn.fetchval("SELECT COUNT(*) FROM templates") == 0
        now[0] += 5
        await catalog.refresh()
        async with db.read() as conn:
            assert await conn.fetchval("SELECT COUNT(*) FROM templates") == 1
