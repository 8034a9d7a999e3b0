"""The template catalog: template folders on disk kept in step with the database
(docs/workspaces.md#templates).

Owns reading a folder (:func:`load_template`: ``template.toml`` plus its ``files/`` tree, within
:data:`MAX_TEMPLATE_FILES` and :data:`MAX_TEMPLATE_BYTES`), the content hash that tells template
versions apart, and :class:`TemplateCatalog`, which scans the built-in folder and
``CoderChatApp.template_paths`` and records a new template version whenever a folder's content
hashes differently; the version on disk is the active one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...store import Database
from ...store import configs as store_configs
from ...store import templates as store_templates
from ...store.templates import TemplateFile
from .manifest import (
    MANIFEST_NAME,
    TemplateError,
    TemplateManifest,
    parse_manifest,
    template_id_for,
)

log = logging.getLogger(__name__)

FILES_DIR = "files"
BUILTIN_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
"""The folder of the templates that ship with coderchat_ext."""
MAX_TEMPLATE_FILES = 1000
MAX_TEMPLATE_BYTES = 16 * 1024 * 1024
"""Limits of a template's ``files/`` tree: it is stored with every version."""
RACY_WINDOW_NS = 2_000_000_000
SKIPPED_NAMES = frozenset({".git", "__pycache__", ".ipynb_checkpoints", ".DS_Store"})


@dataclass(frozen=True)
class LoadedTemplate:
    """A template folder as read from disk."""

    source: str
    manifest: TemplateManifest
    files: tuple[TemplateFile, ...]
    content_hash: str


def _read_files(root: Path) -> list[TemplateFile]:
    if not root.is_dir():
        return []
    files: list[TemplateFile] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_NAMES)
        for filename in sorted(filenames):
            if filename in SKIPPED_NAMES:
                continue
            path = Path(dirpath, filename)
            if path.is_symlink() or not path.is_file():
                continue
            content = path.read_bytes()
            total += len(content)
            if len(files) >= MAX_TEMPLATE_FILES or total > MAX_TEMPLATE_BYTES:
                raise TemplateError(
                    f"{FILES_DIR}/ is too large (at most {MAX_TEMPLATE_FILES} files and "
                    f"{MAX_TEMPLATE_BYTES // (1024 * 1024)} MiB)"
                )
            files.append(
                TemplateFile(
                    path=path.relative_to(root).as_posix(),
                    content=content,
                    executable=os.access(path, os.X_OK),
                )
            )
    return files


def content_hash(manifest_text: bytes, files: Sequence[TemplateFile]) -> str:
    """sha256 over the manifest and every file's path, mode and content."""
    digest = hashlib.sha256()
    digest.update(b"template.toml\0")
    digest.update(manifest_text)
    for f in sorted(files, key=lambda f: f.path):
        digest.update(b"\0file\0" + f.path.encode() + b"\0" + (b"x" if f.executable else b"-"))
        digest.update(len(f.content).to_bytes(8, "big"))
        digest.update(f.content)
    return digest.hexdigest()


def load_template(folder: str | Path) -> LoadedTemplate:
    """Read and check one template folder. Raises :class:`TemplateError`."""
    root = Path(folder)
    manifest_path = root / MANIFEST_NAME
    try:
        raw = manifest_path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read {manifest_path}: {exc}") from None
    try:
        files = _read_files(root / FILES_DIR)
    except OSError as exc:
        raise TemplateError(f"cannot read {root / FILES_DIR}: {exc}") from None
    manifest = parse_manifest(text, has_files=bool(files))
    return LoadedTemplate(
        source=str(root),
        manifest=manifest,
        files=tuple(files),
        content_hash=content_hash(raw, files),
    )


def _signature(root: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a template folder's content may have changed (paths, sizes, mtimes)."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIPPED_NAMES]
        for filename in filenames:
            try:
                stat = os.stat(os.path.join(dirpath, filename))
            except OSError:
                continue
            entries.append((os.path.join(dirpath, filename), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(entries))


@dataclass
class _Cached:
    signature: tuple[tuple[str, int, int], ...]
    loaded: LoadedTemplate | None
    error: str | None


class TemplateCatalog:
    """Keeps the database's templates in step with the template folders.

    ``paths`` are searched in order: each is a template folder (it holds ``template.toml``)
    or a folder of template folders. A template of the same organization and name found later
    replaces an earlier one, so ``template_paths`` can override a built-in. Templates whose
    folder disappeared are deprecated. :meth:`refresh` runs at most every
    ``refresh_interval`` seconds unless forced; folder reads happen in a thread.
    """

    def __init__(
        self,
        db: Database,
        paths: Sequence[str | Path],
        *,
        refresh_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.paths = [Path(p).expanduser() for p in paths]
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._last: float | None = None
        self._lock = asyncio.Lock()
        self._cache: dict[str, _Cached] = {}
        self.problems: dict[str, str] = {}
        """Folder -> why it is not a usable template (after the last refresh)."""

    def _folders(self) -> list[Path]:
        folders: list[Path] = []
        for path in self.paths:
            if (path / MANIFEST_NAME).is_file():
                folders.append(path)
            elif path.is_dir():
                folders.extend(
                    sorted(child for child in path.iterdir() if (child / MANIFEST_NAME).is_file())
                )
            else:
                self.problems[str(path)] = "template path does not exist"
        return folders

    def _scan(self) -> list[LoadedTemplate]:
        self.problems = {}
        loaded: list[LoadedTemplate] = []
        seen: set[str] = set()
        for folder in self._folders():
            key = str(folder)
            seen.add(key)
            signature = _signature(folder)
            cached = self._cache.get(key)
            if cached is None or cached.signature != signature:
                try:
                    cached = _Cached(signature, load_template(folder), None)
                except TemplateError as exc:
                    cached = _Cached(signature, None, str(exc))
                # A file changed within the timestamp granularity could change again without
                # changing its signature ("racy git"): such a read is not reused.
                recent = time.time_ns() - RACY_WINDOW_NS
                if not any(mtime >= recent for _, mtime, _ in signature):
                    self._cache[key] = cached
                else:
                    self._cache.pop(key, None)
            if cached.loaded is not None:
                loaded.append(cached.loaded)
            elif cached.error is not None:
                self.problems[key] = cached.error
        for key in set(self._cache) - seen:
            del self._cache[key]
        return loaded

    async def refresh(self, *, force: bool = False) -> None:
        """Scan the folders and sync the database (at most every ``refresh_interval``)."""
        async with self._lock:
            now = self._clock()
            if not force and self._last is not None and now - self._last < self.refresh_interval:
                return
            loaded = await asyncio.to_thread(self._scan)
            await self._sync(loaded)
            self._last = self._clock()
        for folder, problem in self.problems.items():
            log.warning("template %s is not usable: %s", folder, problem)

    async def _sync(self, loaded: list[LoadedTemplate]) -> None:
        chosen: dict[tuple[str, str], LoadedTemplate] = {}
        for template in loaded:
            key = (template.manifest.organization, template.manifest.name)
            if key in chosen:
                log.info(
                    "template %s in %s replaces the one in %s",
                    template.manifest.name,
                    template.source,
                    chosen[key].source,
                )
            chosen[key] = template
        async with self.db.tx() as conn:
            organizations = await store_configs.organization_ids(conn)
            keep: list[str] = []
            for (organization, name), template in chosen.items():
                org_id = organizations.get(organization)
                if org_id is None:
                    self.problems[template.source] = f"unknown organization {organization!r}"
                    continue
                manifest = template.manifest
                template_id = template_id_for(organization, name)
                await store_templates.upsert_template(
                    conn,
                    template_id=template_id,
                    organization_id=org_id,
                    name=name,
                    display_name=manifest.display_name,
                    description=manifest.description,
                    icon=manifest.icon,
                    daily_cost=manifest.daily_cost,
                    source=template.source,
                )
                version_id = await store_templates.find_version(
                    conn, template_id, template.content_hash
                )
                if version_id is None:
                    version_id = await store_templates.insert_version(
                        conn,
                        template_id=template_id,
                        content_hash=template.content_hash,
                        manifest=manifest.stored(),
                        has_external_agent=manifest.external,
                        files=template.files,
                    )
                await store_templates.set_active_version(conn, template_id, version_id)
                keep.append(template_id)
            await store_templates.deprecate_missing(conn, keep)
