"""Loading scenarios from YAML with errors that name the file, field path and line.

A scenario file may start from another with ``base: NAME`` (a preset in ``twin/presets``) or
``base: path/to/file.yaml`` (relative to the file); mappings merge key by key, lists and values
replace.

Hostile or broken files end in a :class:`~twin.errors.ScenarioError`, never a traceback
(decisions of issue 15):

* A scenario file is a regular file of UTF-8 text (a UTF-8 byte-order mark is allowed) of at most
  :data:`MAX_FILE_BYTES`; anything else ("not UTF-8 text at byte N", a folder, a device) is refused.
* YAML anchors and aliases are allowed (``&pool`` ... ``*pool`` to repeat a workload), but the
  document they expand to may have at most :data:`MAX_NODES` nodes (a scenario has a few
  hundred): a "billion laughs" file is refused after reading that many, in milliseconds, and a
  recursive alias (``&a [*a]``) is refused outright. The count runs over the parser's events
  before anything is built.
* Mappings and lists nest at most :data:`MAX_DEPTH` deep (the scenario schema needs 5); deeper
  input is refused before the recursive YAML composer could exhaust Python's stack.
* An empty file (or one of only comments, or ``{}``) is refused: it would silently run the
  schema's defaults for 24 h with no workload. A file that sets ``workloads: []`` on purpose
  loads; ``twin validate`` and ``twin run`` warn that nothing runs (``twin.checks``).
* A ``base:`` chain is at most :data:`MAX_BASE_CHAIN` files long.
* Values given as overrides (``twin run --set``) are located at no line of the file: an error
  in one names the field path without the preset's line (the CLI says ``--set KEY``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from twin.errors import FieldProblem, InvalidInputError, ScenarioError
from twin.scenario.schema import PathError, Scenario, set_dotted

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"
DEFAULT_PRESET = "default"

#: Largest scenario (or sweep spec) file read. [B] The default preset is 2 kB.
MAX_FILE_BYTES = 10 * 2**20
#: Most nodes (scalars, mappings, lists) a YAML document may expand to, aliases expanded.
MAX_NODES = 100_000
#: Deepest nesting of mappings and lists in a YAML document.
MAX_DEPTH = 64
#: Most files in a ``base:`` chain.
MAX_BASE_CHAIN = 16


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
        Dotted-path values applied after loading, e.g. ``{"fleet.rows": 2}``
        (see :func:`twin.scenario.schema.set_dotted`).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        Listing every problem as ``field.path (line N): what was expected, got what``; problems
        with an override's value (or path) carry no line.
    """
    path = _resolve(source)
    data, lines = _read_with_base(path, seen=())
    keys = list(overrides or {})
    bad_paths = []
    for key, value in (overrides or {}).items():
        try:
            set_dotted(data, key, copy.deepcopy(value))  # a later dotted key must not edit the caller's value
        except PathError as exc:
            bad_paths.append(FieldProblem(key, str(exc)))
    if bad_paths:
        raise ScenarioError(str(path), bad_paths)
    data["source_dir"] = path.parent
    data["source_file"] = path
    try:
        return validate_mapping(data, str(path), lines)
    except ScenarioError as exc:
        if not keys:
            raise
        problems = [
            FieldProblem(p.field, p.message, None if overridden(p.field, keys) else p.line) for p in exc.problems
        ]
        raise ScenarioError(exc.source, problems) from None


def overridden(field: str, keys: list[str]) -> str | None:
    """The override key that set ``field`` (the field itself or a mapping above it), or None."""
    return next((k for k in keys if field == k or field.startswith(k + ".")), None)


def blame_overrides(exc: ScenarioError, keys: list[str], label: str = "--set") -> ScenarioError:
    """``exc`` with each problem an override caused named ``--set KEY`` (the value came from there).

    A problem below the key (``--set cooling={...}`` with a bad ``cooling.supply_temp_c``) keeps
    its field path in the message; one above it (the fleet size, the scenario as a whole) says
    which overrides it was found with.
    """
    problems = []
    for p in exc.problems:
        key = overridden(p.field, keys)
        if key is None:  # a problem of a mapping above an override (or of the whole scenario) may stem from it
            whole = p.field == "(top level)" and p.line is None  # a schema rule, not the file's shape
            related = [k for k in keys if whole or k.startswith(p.field + ".")]
            with_sets = f" (with {', '.join(f'{label} {k}' for k in related)})" if related else ""
            problems.append(FieldProblem(p.field, p.message + with_sets, p.line))
        else:
            message = p.message if p.field == key else f"{p.field} {p.message}"
            problems.append(FieldProblem(f"{label} {key}", message))
    return ScenarioError(exc.source, problems)


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``KEY=VALUE`` overrides (the CLI's ``--set``) as a mapping; each value is YAML.

    Values are read within this module's limits (size, depth, aliases).

    Raises
    ------
    InvalidInputError
        An item without ``=``, or a value that is not valid YAML, naming ``--set KEY``.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise InvalidInputError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        try:
            out[key] = loads_yaml(value, f"--set {key}")[0]
        except ScenarioError as exc:
            raise InvalidInputError(f"--set {key}: {exc.problems[0].message}") from None
    return out


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
    if len(seen) >= MAX_BASE_CHAIN:
        raise ScenarioError(str(path), [FieldProblem("base", f"a base chain has at most {MAX_BASE_CHAIN} files")])
    data, lines = read_yaml(path)
    if data is None or data == {}:
        raise ScenarioError(
            str(path),
            [
                FieldProblem(
                    "(file)",
                    "empty scenario; start from `base: default` and set what differs (see twin/presets/default.yaml)",
                )
            ],
        )
    if not isinstance(data, dict):
        raise ScenarioError(
            str(path), [FieldProblem("(top level)", f"expected a mapping, got {type(data).__name__}", 1)]
        )
    base = data.pop("base", None)
    if base is None:
        return data, lines
    where = lines.get(("base",))
    if not isinstance(base, str) or not base:
        raise ScenarioError(
            str(path), [FieldProblem("base", f"expected a preset name or a file path, got {base!r}", where)]
        )
    base_path = path.parent / base
    if not base_path.is_file():
        if base_path.is_dir():
            raise ScenarioError(
                str(path), [FieldProblem("base", f"{str(base_path)!r} is a folder, not a scenario file", where)]
            )
        base_path = preset_path(base)
    if not base_path.is_file():
        raise ScenarioError(
            str(path),
            [FieldProblem("base", f"no preset or file {base!r}; presets are {', '.join(preset_names())}", where)],
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

    Raises :class:`ScenarioError` naming the file (and the line where known) when the file is
    not a readable regular file of UTF-8 text, is malformed YAML, or exceeds the size, depth or
    alias-expansion limits of the module docstring.
    """
    return loads_yaml(read_text(path), str(path))


def read_text(path: Path) -> str:
    """The UTF-8 text of the regular file ``path`` (at most :data:`MAX_FILE_BYTES`)."""

    def refuse(message: str) -> ScenarioError:
        return ScenarioError(str(path), [FieldProblem("(file)", message)])

    if path.is_dir():
        raise refuse("is a folder, not a scenario file")
    if not path.is_file():
        raise refuse("no such file" if not path.exists() else "not a regular file (a device, pipe or socket?)")
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise refuse(f"larger than {MAX_FILE_BYTES // 2**20} MiB; a scenario is a few kB of YAML")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(
            str(path),
            [
                FieldProblem(
                    "(file)",
                    f"not UTF-8 text at byte {exc.start} (0x{raw[exc.start]:02x}); save the file as UTF-8",
                    line,
                )
            ],
        ) from None


def loads_yaml(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Parse one YAML document within the limits of the module docstring; also its key lines.

    Parameters
    ----------
    text : str
        The YAML text.
    source : str
        What errors name (a file path, or ``--set KEY``).

    Returns
    -------
    data, lines
        The document (None when empty) and the 1-based line of each key path in it.
    """
    text = text.removeprefix("\ufeff")
    try:
        _check_size(text, source)
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [_yaml_problem(exc, text)]) from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [_yaml_problem(exc, text)]) from None
    except (ValueError, OverflowError) as exc:  # a value YAML parsed but Python cannot hold (a date, a huge int)
        raise ScenarioError(source, [FieldProblem("(yaml)", f"not a valid YAML value: {exc}")]) from None
    return data, (_line_map(node) if node is not None else {})


def _check_size(text: str, source: str) -> None:
    """Refuse documents nested deeper than :data:`MAX_DEPTH` or expanding past :data:`MAX_NODES`.

    Runs over the parser's events (an iterative state machine: no recursion, nothing built), so it
    stops a billion-laughs file after :data:`MAX_NODES` nodes' worth of aliases.
    """
    sizes: dict[str, int] = {}  # anchor -> nodes it expands to
    open_: list[tuple[str | None, int]] = []  # collections being read: (anchor, nodes before them)
    total = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_) >= MAX_DEPTH:
                raise ScenarioError(
                    source, [FieldProblem("(yaml)", f"nested more than {MAX_DEPTH} mappings or lists deep", line)]
                )
            open_.append((event.anchor, total))
            total += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_.pop()
            if anchor is not None:
                sizes[anchor] = total - before
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_):
                what = f"alias *{event.anchor} refers to itself (a recursive document)"
                raise ScenarioError(source, [FieldProblem("(yaml)", what, line)])
            total += sizes.get(event.anchor, 1)  # an undefined alias: the composer names it
        else:
            continue
        if total > MAX_NODES:
            raise ScenarioError(
                source,
                [
                    FieldProblem(
                        "(yaml)",
                        f"the document expands to more than {MAX_NODES:,} values (aliases expanded; a scenario "
                        "has a few hundred): aliases that repeat aliases?",
                        line,
                    )
                ],
            )


def _yaml_problem(exc: yaml.YAMLError, text: str) -> FieldProblem:
    """A one-line description of a YAML error with its line."""
    if isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, exc.position) + 1
        return FieldProblem("(yaml)", f"not valid YAML: {str(exc).splitlines()[0]}", line)
    mark = getattr(exc, "problem_mark", None)
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    what = ": ".join(str(p) for p in parts if p) or str(exc)
    return FieldProblem("(yaml)", f"not valid YAML: {what}", mark.line + 1 if mark is not None else None)


def _line_map(node: yaml.Node, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    lines = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?")
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
