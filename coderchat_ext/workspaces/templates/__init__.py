"""Workspace templates: ``template.toml`` plus a ``files/`` tree (docs/workspaces.md#templates).

A template folder holds::

    template.toml     name, display_name, description, icon, daily_cost, organization,
                      external, init, env_passthrough, [sandbox], [[parameters]],
                      [[presets]], [[agents]]
    files/            copied into the workspace on its first start

Three modules, each importing only the ones before it:

- :mod:`.parameters`: the value rules of a parameter and :func:`resolve_parameters`, which turns
  the values a build asks for into the full, validated set (or raises :class:`ParameterError`
  with one ``(field, detail)`` per problem);
- :mod:`.manifest`: :func:`parse_manifest` (raising :class:`TemplateError` with what is wrong and
  where), the checked :class:`TemplateManifest` with its ``[sandbox]`` and ``env_passthrough``,
  and the stable template and preset ids;
- :mod:`.catalog`: :func:`load_template` for one folder and :class:`TemplateCatalog`, which scans
  the built-in folder and ``CoderChatApp.template_paths`` and keeps the
  ``templates``/``template_versions`` tables in step: a folder whose content (manifest and
  files) hashes differently becomes a new template version, and the version on disk is the
  active one.

The names the rest of the package uses are re-exported here.
"""

from __future__ import annotations

from .catalog import BUILTIN_TEMPLATES, LoadedTemplate, TemplateCatalog, load_template
from .manifest import (
    SandboxManifest,
    TemplateError,
    TemplateManifest,
    manifest_of,
    parse_manifest,
    template_id_for,
)
from .parameters import ParameterError, check_value, env_name, resolve_parameters, value_string

__all__ = [
    "BUILTIN_TEMPLATES",
    "LoadedTemplate",
    "ParameterError",
    "SandboxManifest",
    "TemplateCatalog",
    "TemplateError",
    "TemplateManifest",
    "check_value",
    "env_name",
    "load_template",
    "manifest_of",
    "parse_manifest",
    "resolve_parameters",
    "template_id_for",
    "value_string",
]
