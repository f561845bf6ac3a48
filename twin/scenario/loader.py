"""Loading scenarios from YAML with errors that name the file, field path and line.

A scenario file may start from another with ``base: NAME`` (a preset in ``twin/presets``) or
``base: path/to/file.yaml`` (relative to the file); mappings merge key by key, lists and values
replace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from twin.errors import FieldProblem, ScenarioError
from twin.scenario.schema import Scenario

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
DEFAULT_PRESET = "default"


def preset_names() -> list[str]:
    """Names of the built-in scenario presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """Path of the built-in preset ``name``."""
    return PRESET_DIR / f"{name}.yaml"


def load_scenario(source: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load and validate a scenario.

    Parameters
    ----------
    source : str or Path, optional
        A YAML file, or a preset name (``"default"``). None loads the built-in default.
    overrides : dict, optional
        Dotted-path values applied after loading, e.g. ``{"fleet.rows": 2}``.

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Listing every problem as ``field.path (line N): what was expected, got what``.
    """
    path = _resolve(source)
    data, lines = _read_with_base(path, seen=())
    for key, value in (overrides or {}).items():
        from twin.scenario.schema import set_dotted

        set_dotted(data, key, value)
    data["source_dir"] = path.parent
    return validate_mapping(data, str(path), lines)


def validate_mapping(
    data: dict[str, Any],
    source: str,
    lines: dict[tuple[str, ...], int] | None = None,
    model: type[BaseModel] = Scenario,
) -> Any:
    """Validate a mapping against ``model``, raising :class:`ScenarioError` with located problems."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, problems_from_validation(exc, lines or {}, model)) from None


def problems_from_validation(
    exc: ValidationError, lines: dict[tuple[str, ...], int], model: type[BaseModel]
) -> list[FieldProblem]:
    """Turn pydantic errors into :class:`FieldProblem` items with paths, lines and messages."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = _clean_loc(err["loc"])
        field = ".".join(loc) or "(top level)"
        raw = tuple(str(part) for part in err["loc"])
        problems.append(FieldProblem(field, _message(err, raw, model), _line_of(loc, lines)))
    return problems


def _resolve(source: str | Path | None) -> Path:
    if source is None:
        return preset_path(DEFAULT_PRESET)
    path = Path(source)
    if path.suffix not in (".yaml", ".yml") and not path.exists() and preset_path(str(source)).exists():
        return preset_path(str(source))
    if not path.exists():
        raise ScenarioError(
            str(path),
            [FieldProblem("(file)", f"no such file; presets are {', '.join(preset_names())}")],
        )
    return path


def _read_with_base(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    if path.resolve() in seen:
        raise ScenarioError(str(path), [FieldProblem("base", "circular base chain")])
    data, lines = read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(
            str(path), [FieldProblem("(top level)", f"expected a mapping, got {type(data).__name__}", 1)]
        )
    base = data.pop("base", None)
    if base is None:
        return data, lines
    base_path = path.parent / str(base)
    if not base_path.exists():
        base_path = preset_path(str(base))
    if not base_path.exists():
        raise ScenarioError(
            str(path),
            [
                FieldProblem(
                    "base", f"no preset or file {base!r}; presets are {', '.join(preset_names())}", lines.get(("base",))
                )
            ],
        )
    base_data, _ = _read_with_base(base_path, (*seen, path.resolve()))
    return _deep_merge(base_data, data), lines


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: Path) -> tuple[Any, dict[tuple[str, ...], int]]:
    """The YAML document in ``path`` (None when empty) and the line of each key path in it.

    Malformed YAML raises :class:`ScenarioError` naming the file and the line.
    """
    text = path.read_text()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ScenarioError(str(path), [FieldProblem("(yaml)", f"not valid YAML: {exc}", line)]) from None
    return data, (_line_map(node) if node is not None else {})


def _line_map(node: yaml.Node, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    lines = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            lines.update(_line_map(value_node, key))
            lines[key] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.update(_line_map(item, (*prefix, str(i))))
    return lines


#: Tags pydantic inserts into error locations for discriminated unions, by parent field.
_UNION_TAGS = {
    "cooling": ("plant", "ideal"),
    "workloads": ("inference", "training", "telemetry"),
    "arrivals": ("constant", "diurnal", "trace", "poisson", "bursty"),
}


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    """Drop the discriminator tags pydantic inserts (``cooling.plant.x`` -> ``cooling.x``)."""
    out: list[str] = []
    for part in loc:
        text = str(part)
        parent = out[-2] if out and out[-1].isdigit() and len(out) >= 2 else (out[-1] if out else "")
        if text in _UNION_TAGS.get(parent, ()):
            continue
        out.append(text)
    return tuple(out)


def _line_of(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


_OPS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _message(err: Any, loc: tuple[str, ...], model: type[BaseModel]) -> str:
    kind = err["type"]
    got = err.get("input")
    if kind in _OPS:
        key, op = _OPS[kind]
        return f"must be {op} {err['ctx'][key]}, got {got!r}"
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        valid = _valid_keys(model, loc[:-1])
        hint = f"; valid fields here: {', '.join(valid)}" if valid else ""
        return f"unknown field{hint}"
    if kind == "value_error":
        return str(err["ctx"]["error"])
    return f"{err['msg'].lower()}, got {got!r}"


def _valid_keys(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """Fields valid at ``loc`` (a raw pydantic location: discriminator tags pick union members)."""
    current: Any = model
    for part in loc:
        if part.isdigit():
            continue
        members = _models_in(current)
        owner = next((m for m in members if part in m.model_fields), None)
        if owner is not None:
            current = owner.model_fields[part].annotation
            continue
        tagged = [m for m in members if part in _tags_of(m)]
        if not tagged:
            return []
        current = tagged[0]
    members = _models_in(current)
    if len(members) != 1:
        return []
    return sorted(k for k, f in members[0].model_fields.items() if not f.exclude)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models named in an annotation (through list, Annotated and unions)."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _tags_of(model: type[BaseModel]) -> tuple[str, ...]:
    """Discriminator values of a union member (the literals of its ``kind`` or ``model`` field)."""
    import typing

    for name in ("kind", "model"):
        f = model.model_fields.get(name)
        if f is not None and typing.get_origin(f.annotation) is typing.Literal:
            return tuple(str(a) for a in typing.get_args(f.annotation))
    return ()
