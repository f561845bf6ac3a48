"""LLM architectures by name: a catalog model, a shipped Hugging Face id or a ``config.json`` path.

A workload's ``model:`` names a catalog model (``models.yaml``), a Hugging Face model id whose
``config.json`` ships in ``architectures/`` (their sources are in ``architectures/SOURCE.md``), or
a path to any ``config.json``. :func:`load_architecture` resolves all three into an
:class:`~twin.catalog.model_architecture.Architecture` (what serving one token costs); the fields
read from a ``config.json``, and the checks that refuse one the twin cannot use, are in
:mod:`twin.catalog.hf_config`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from twin.catalog.hf_config import read_config
from twin.catalog.model_architecture import BYTES_PER_VALUE, Architecture, ArchitectureError
from twin.errors import UnknownNameError

__all__ = [
    "ARCHITECTURES_DIR",
    "BYTES_PER_VALUE",
    "Architecture",
    "ArchitectureError",
    "load_architecture",
    "looks_like_path",
    "resolve_id",
    "shipped_model_ids",
]

ARCHITECTURES_DIR = Path(__file__).parent / "architectures"


def _file_name(model_id: str) -> str:
    return model_id.replace("/", "__") + ".json"


@cache
def shipped_model_ids() -> tuple[str, ...]:
    """Hugging Face ids whose ``config.json`` ships with the twin."""
    return tuple(sorted(p.stem.replace("__", "/", 1) for p in ARCHITECTURES_DIR.glob("*.json")))


@cache
def _shipped(model_id: str) -> Architecture:
    return read_config(ARCHITECTURES_DIR / _file_name(model_id), model_id)


def looks_like_path(name: str) -> bool:
    """True if ``name`` is meant as a file path (ends in ``.json`` or holds a path separator that is not an org/id)."""
    return name.endswith(".json") or name.startswith((".", "/", "~")) or name.count("/") > 1


def resolve_id(name: str) -> str | None:
    """The shipped Hugging Face id ``name`` refers to (case-insensitive), or None."""
    ids = {m.lower(): m for m in shipped_model_ids()}
    return ids.get(name.lower())


def load_architecture(name: str, base_dir: Path | None = None) -> Architecture:
    """Resolve a catalog name, a shipped Hugging Face id or a ``config.json`` path.

    Raises :class:`~twin.errors.UnknownNameError` (listing the valid names) for a name that is
    none of these, and :class:`ArchitectureError` for a config it cannot use.

    Examples
    --------
    Qwen3-8B: 8.19 billion parameters (its model card: 8.2B), 36 layers x 8 KV heads x 128 x 2 x 2 B
    of KV cache per token:

    >>> a = load_architecture("Qwen/Qwen3-8B")
    >>> round(a.params / 1e9, 2), a.kv_bytes_per_token()
    (8.19, 147456.0)
    """
    from twin.catalog import catalog_model_architecture, model_names  # the catalog's short names

    if name in model_names():
        return catalog_model_architecture(name)
    hf = resolve_id(name)
    if hf is not None:
        return _shipped(hf)
    if looks_like_path(name):
        path = Path(name).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return read_config(path)
    raise UnknownNameError("model", name, [*model_names(), *shipped_model_ids()])
