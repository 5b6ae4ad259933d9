"""The experiment tools: repeated runs over seeds and their statistics (``xpnet.experiments`` keeps its
old names: :func:`run_seeds`, :func:`aggregate`, :func:`load_runs`, ...), the articles' tables
(:mod:`.reproduce`) and the benchmarks (:mod:`.bench`)."""

from .config import SETTINGS, run_config  # noqa: F401 -- found here before the move, as the module imported them
from .runs import *  # noqa: F403 -- the package keeps the names of the module it was
from .runs import __all__  # noqa: F401
