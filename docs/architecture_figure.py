"""Draw docs/architecture.png: the import-linter layers of pyproject.toml and a run's data flow.

Run from the repository root: ``python docs/architecture_figure.py``. The layers are read from
the "Layers" contract, so the figure follows the contract; line counts are counted from twin/.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "architecture.png"

#: The run's data flow, top to bottom: (label, modules).
FLOW = [
    ("scenario YAML / --set / sweep point / dashboard lever", "scenario.loader, scenario.edits"),
    ("Scenario (pydantic, frozen)", "scenario.schema"),
    ("build_facility -> Facility (typed, immutable)", "facility, facility_inputs, facility_traces -> facility_parts"),
    (
        "Engine: simpy kernel + vectorised blocks",
        "engine.kernel + serving, supply, fault_schedule, jobs, controls, cooling",
    ),
    ("Result: KPIs (registry), time series, ledger", "results, kpis, ledger"),
    ("report / CLI / dashboard / sweeps / validation", "report, cli, dashboard, sweep, validation"),
]


def layers() -> list[str]:
    """The layers of the "Layers" contract, highest first."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["type"] == "layers":
            return [str(layer) for layer in contract["layers"]]
    raise SystemExit("pyproject.toml has no layers contract")


def lines_of(module: str) -> int:
    """Lines of a module or package of twin (``twin.engine``: every file under twin/engine/)."""
    path = ROOT / Path(*module.split("."))
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    return sum(len(f.read_text().splitlines()) for f in files if f.exists())


def _box(ax: plt.Axes, x: float, y: float, w: float, h: float, text: str, color: str, size: float = 8.5) -> None:
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.003,rounding_size=0.01", fc=color, ec="#444"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, wrap=True)


def _arrow(ax: plt.Axes, x: float, y0: float, y1: float) -> None:
    ax.add_patch(FancyArrowPatch((x, y0), (x, y1), arrowstyle="-|>", mutation_scale=12, color="#333"))


def main() -> None:
    """Write the figure."""
    stack = layers()
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 9), gridspec_kw={"width_ratios": [1.05, 1.0]})
    for ax in (left, right):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")

    left.set_title("Layers (import-linter contract): a module imports only from layers below", fontsize=11)
    n = len(stack)
    h = 0.94 / n
    for i, layer in enumerate(stack):
        y = 0.97 - (i + 1) * h
        mods = [m.strip() for m in layer.split("|")]
        label = "   ".join(f"{m.removeprefix('twin.')} ({lines_of(m):,})" for m in mods)
        shade = "#dbe9f6" if "physics" not in layer else "#d9f0d3"
        _box(left, 0.02, y + 0.008, 0.96, h - 0.016, label, shade)
    left.text(0.5, 0.005, "(lines of code in brackets)", ha="center", fontsize=8, color="#555")

    right.set_title("One run: twin.simulation.simulate(scenario) -> Result", fontsize=11)
    m = len(FLOW)
    step = 0.94 / m
    for i, (label, modules) in enumerate(FLOW):
        y = 0.97 - (i + 1) * step
        color = "#fde0c5" if i in (2, 3) else "#eeeeee"
        _box(right, 0.05, y + 0.02, 0.9, step - 0.04, f"{label}\n[{modules}]", color, size=9)
        if i:
            _arrow(right, 0.5, y + step + 0.02, y + step - 0.02)
    right.text(
        0.5,
        0.005,
        "the engine imports nothing of twin.scenario; physics is pure numpy called from facility and engine",
        ha="center",
        fontsize=8,
        color="#555",
    )
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
