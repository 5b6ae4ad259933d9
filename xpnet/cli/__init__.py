"""``xpnet train | compare | bench | data``: the command line (:func:`main`)."""

from ..experiments.config import load_data as _load_data  # noqa: F401 -- its name here before the move
from ..experiments.config import run_config
from .main import _data_parser, main, version, wall_time_line  # noqa: F401

__all__ = ["main", "run_config", "version", "wall_time_line"]
