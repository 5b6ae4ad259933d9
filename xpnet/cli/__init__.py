"""``xpnet train | compare | bench | data``: the command line (:func:`main`), one module per job:
:mod:`.main` (the command's choice, errors, interrupts), :mod:`.parsers`, :mod:`.checks`, :mod:`.report`
(what runs print), one module per command (:mod:`.train`, :mod:`.compare`, :mod:`.bench`, :mod:`.data`)
and ``python -m xpnet.reproduce`` (:mod:`.reproduce`). No library module imports this package."""

from ..experiments.config import load_data as _load_data  # noqa: F401 -- its name here before the move
from ..experiments.config import run_config
from .compare import cmd_compare
from .data import cmd_data
from .main import COMMANDS, main, version
from .parsers import data_parser as _data_parser  # noqa: F401 -- its name here before the split
from .train import cmd_train, wall_time_line

__all__ = ["COMMANDS", "cmd_compare", "cmd_data", "cmd_train", "main", "run_config", "version", "wall_time_line"]
