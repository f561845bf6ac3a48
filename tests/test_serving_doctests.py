"""The docstring examples of the serving and accelerator modules are hand-checkable values: run them."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from twin import replica
from twin.catalog import architecture
from twin.physics import accelerator, experts, governor, interconnect, serving, serving_rates, step_costs
from twin.validation import serving_data, serving_fit


@pytest.mark.parametrize(
    "module",
    [
        serving,
        step_costs,
        experts,
        serving_rates,
        interconnect,
        accelerator,
        governor,
        replica,
        architecture,
        serving_data,
        serving_fit,
    ],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0
