"""The docstring examples of the cooling modules are hand-checkable values: run them."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from twin import weather
from twin.catalog import cooling as catalog_cooling
from twin.physics import cooling, cooling_plant, heat_rejection, psychrometrics


@pytest.mark.parametrize(
    "module",
    [psychrometrics, cooling, heat_rejection, cooling_plant, catalog_cooling, weather],
    ids=lambda m: m.__name__,
)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if module is not weather:
        assert result.attempted > 0
