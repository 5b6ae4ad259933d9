"""Compatibility module: the backend API lives in the :mod:`xpnet.backends` package
(one adapter per library). ``from xpnet.backend import ...`` keeps working."""

from .backends import *  # noqa: F403 -- the old module name, kept as an alias of the package
from .backends import __all__  # noqa: F401
