"""The process-wide settings of the backend package (one dict, no logic)."""

from __future__ import annotations

from typing import Any

import numpy as np

state: dict[str, Any] = {
    "backend": None,  # the active Backend (None until first asked for)
    "dtype": "float32",  # default floating dtype
    "rng": np.random.default_rng(),  # host RNG: initial weights, host-side dropout masks
    "seed": None,  # the last xpnet.seed(n), applied to libraries imported later
    "seeded": set(),  # libraries already seeded with it
}
