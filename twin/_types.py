"""Type aliases for annotations of physics functions."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

FloatArray: TypeAlias = NDArray[np.float64]
IntArray: TypeAlias = NDArray[np.int64]
BoolArray: TypeAlias = NDArray[np.bool_]
#: A float or a float array (what the physics functions broadcast over).
Numeric: TypeAlias = float | NDArray[np.floating]
