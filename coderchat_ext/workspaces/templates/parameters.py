"""Template parameters: checking the values a build asks for (docs/workspaces.md#templates).

Owns the value rules of a parameter (type, options, regex, min/max, a template's own
``validation.error``), the string form builds store (:func:`value_string`), and
:func:`resolve_parameters`, which fills a build's values from what it was given, its preset,
the previous build and the defaults, or raises :class:`ParameterError` with one
``(field, detail)`` per problem.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence

from ...models import TemplateParameter

Scalar = str | int | float | bool
RawValue = Scalar | list[str]


class ParameterError(ValueError):
    """Parameter values a build cannot use; ``validations`` holds ``(field, detail)`` pairs
    where the field is the parameter name (or ``preset_id``)."""

    def __init__(self, validations: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{f}: {d}" for f, d in validations))
        self.validations = validations


def value_string(value: RawValue) -> str:
    """A parameter value as the string builds store: ``true``/``false``, decimal numbers
    without a needless ``.0``, JSON arrays for lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return json.dumps([str(v) for v in value])
    return value


def env_name(parameter: str) -> str:
    """The environment variable that carries a parameter into ``init`` (its name uppercased)."""
    return parameter.upper()


def _number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _fmt(number: float) -> str:
    return value_string(number)


def check_value(parameter: TemplateParameter, value: str) -> str | None:
    """What is wrong with ``value`` for ``parameter`` (type, options, regex, min/max), or
    None. A template's ``validation.error`` replaces the regex and min/max messages; it may use
    ``{value}``, ``{min}`` and ``{max}``."""

    def custom(default: str) -> str:
        template = parameter.validation_error
        if not template:
            return default
        low, high = parameter.validation_min, parameter.validation_max
        return (
            template.replace("{value}", value)
            .replace("{min}", "" if low is None else _fmt(low))
            .replace("{max}", "" if high is None else _fmt(high))
        )

    allowed = [o.value for o in parameter.options] if parameter.options else None
    if parameter.type == "bool":
        if value not in ("true", "false"):
            return f'must be "true" or "false", got "{value}"'
    elif parameter.type == "number":
        number = _number(value)
        if number is None:
            return f'must be a number, got "{value}"'
        low, high = parameter.validation_min, parameter.validation_max
        if low is not None and number < low:
            return custom(f"must be at least {_fmt(low)}, got {value}")
        if high is not None and number > high:
            return custom(f"must be at most {_fmt(high)}, got {value}")
        if allowed is not None and all(_number(a) != number for a in allowed):
            return f"must be one of {', '.join(allowed)}, got {value}"
        return None
    elif parameter.type == "list(string)":
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            return f"must be a JSON array of strings, got {value!r}"
        if allowed is not None:
            bad = [i for i in items if i not in allowed]
            if bad:
                return f"{', '.join(bad)} not among the options {', '.join(allowed)}"
        return None
    elif parameter.validation_regex is not None and not re.search(
        parameter.validation_regex, value
    ):
        return custom(f'"{value}" does not match {parameter.validation_regex}')
    if allowed is not None and value not in allowed:
        return f'must be one of {", ".join(allowed)}, got "{value}"'
    return None


def resolve_parameters(
    parameters: Sequence[TemplateParameter],
    given: Mapping[str, str],
    *,
    preset: Mapping[str, str] | None = None,
    previous: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The values of every parameter for a build: ``given`` first, then the ``preset``, then
    the ``previous`` build's values, then the default. ``previous`` is None for a new
    workspace; when given, changing an immutable parameter is refused.

    Raises :class:`ParameterError` listing each unknown name, missing required value,
    immutable change and invalid value.
    """
    problems: list[tuple[str, str]] = []
    known = {p.name for p in parameters}
    for name in given:
        if name not in known:
            choices = ", ".join(sorted(known)) or "none"
            problems.append((name, f"unknown parameter; the template's parameters: {choices}"))
    values: dict[str, str] = {}
    for parameter in parameters:
        name = parameter.name
        value = given.get(name)
        if value is None and preset is not None:
            value = preset.get(name)
        if value is None and previous is not None:
            value = previous.get(name)
        if value is None:
            value = parameter.default
        if value is None:
            problems.append((name, "required parameter is missing"))
            continue
        if (
            previous is not None
            and not parameter.mutable
            and name in previous
            and previous[name] != value
        ):
            problems.append(
                (name, f'parameter is immutable: it stays "{previous[name]}" for this workspace')
            )
            continue
        problem = check_value(parameter, value)
        if problem:
            problems.append((name, problem))
            continue
        values[name] = value
    if problems:
        raise ParameterError(problems)
    return values
