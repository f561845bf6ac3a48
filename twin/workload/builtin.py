"""Traces shipped with the twin, by name, and resolving a scenario's trace reference to a file."""

from __future__ import annotations

from pathlib import Path

from twin.workload.requests import AZURE_LLM_2023, DATA_DIR

#: Built-in trace name -> file. Each folder holds a SOURCE.md (origin, licence, what a row is).
BUILTIN_TRACES: dict[str, Path] = {
    "azure-llm-2023-code": AZURE_LLM_2023["code"],
    "azure-llm-2023-conv": AZURE_LLM_2023["conv"],
    "nvidia-smi-sample": DATA_DIR / "nvidia-smi-sample" / "nvidia_smi_8gpu_sample.csv",
    "training-jobs-sample": DATA_DIR / "training-jobs-sample" / "training_jobs_sample.csv",
}


def resolve_trace(ref: str, base_dir: Path | None) -> Path:
    """Return the file a scenario means by ``ref``: a built-in name, else a path.

    A relative path is taken relative to ``base_dir`` (the scenario file's folder) when given.

    Raises
    ------
    FileNotFoundError
        No built-in of that name and no such file (the message lists the built-in names), or a folder.
    """
    if ref in BUILTIN_TRACES:
        return BUILTIN_TRACES[ref]
    path = Path(ref).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.is_dir():
        raise FileNotFoundError(f"{str(path)!r} is a folder; expected a trace file or a built-in trace name")
    if not path.is_file():
        names = ", ".join(sorted(BUILTIN_TRACES))
        raise FileNotFoundError(f"no such trace file {str(path)!r} and no built-in trace {ref!r} (built-ins: {names})")
    return path
