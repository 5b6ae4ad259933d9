"""The modules' old names, kept importable after the package was grouped into folders.

``import xpnet.losses`` (or ``xpnet.layers.conv``, ``python -m xpnet.reproduce``) gives the very module
that now lives at ``xpnet.network.losses``: one object under two names, so ``isinstance`` checks and
monkeypatching behave as before. :data:`MOVED` is the whole list. Two old modules held names that now
live in several places: ``xpnet.controls`` and ``xpnet.trainer`` are gathered from :data:`GATHERED`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

MOVED = {
    "xpnet.atomic": "xpnet.utils.atomic",
    "xpnet.backend": "xpnet.backends",
    "xpnet.bench": "xpnet.experiments.bench",
    "xpnet.checkpoint": "xpnet.training.checkpoint",
    "xpnet.cli_checks": "xpnet.cli.checks",
    "xpnet.clipping": "xpnet.optim.clipping",
    "xpnet.datasets": "xpnet.data.datasets",
    "xpnet.distributed": "xpnet.training.distributed",
    "xpnet.fileformat": "xpnet.network.fileformat",
    "xpnet.gradient": "xpnet.network.gradient",
    "xpnet.history": "xpnet.training.history",
    "xpnet.io": "xpnet.network.io",
    "xpnet.kernels": "xpnet.backends.kernels",
    "xpnet.layers": "xpnet.network.layers",
    "xpnet.losses": "xpnet.network.losses",
    "xpnet.memory": "xpnet.experiments.memory",
    "xpnet.model": "xpnet.network.model",
    "xpnet.models": "xpnet.network.models",
    "xpnet.ops": "xpnet.network.ops",
    "xpnet.optimizers": "xpnet.optim.optimizers",
    "xpnet.reproduce": "xpnet.cli.reproduce",
    "xpnet.schedules": "xpnet.optim.schedules",
    "xpnet.seedstats": "xpnet.experiments.seedstats",
    "xpnet.tables": "xpnet.utils.tables",
}
"""Old module name → where it lives now (a package's submodules follow it: ``xpnet.layers.conv``)."""


GATHERED: dict[str, dict[str, tuple[str, ...]]] = {
    "xpnet.controls": {
        "xpnet.training.step": ("GRADIENTS", "check_gradient_mode", "step_gradients", "train_step"),
        "xpnet.training.validation": ("split_validation", "stratified_split"),
        "xpnet.training.extensions.early_stopping": ("BestWeights",),
        "xpnet.training.trainer": ("describe",),
        "xpnet.experiments.options": ("OptionError", "cli_options", "default_dtype"),
        "xpnet.cli.compare": ("timed_rows",),
    },
    "xpnet.trainer": {
        "xpnet.training.trainer": ("Trainer", "describe"),
        "xpnet.training.extension": ("Callback",),
        "xpnet.training.extensions": ("format_epoch", "progress_bar"),
    },
}
"""Old module name → {today's module: the names it gives}: a module of its own, made on import."""


def new_name(name: str) -> str | None:
    """Today's name of the module once called ``name``; ``None`` when it never moved."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return None


class OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a moved module under its old name and hands back the module itself (imported once, under its
    new name); makes a gathered one from its names. ``python -m`` with an old name runs the new module as
    ``__main__``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in GATHERED:
            return importlib.util.spec_from_loader(fullname, self)
        new = new_name(fullname)
        if new is None or importlib.util.find_spec(new) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        if spec.name in GATHERED:
            return None  # a fresh module, filled by exec_module
        module = importlib.import_module(new_name(spec.name) or spec.name)
        spec.loader_state = module.__spec__  # the import system writes this spec over the module's own
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """A moved module gets its own spec back (``importlib.reload`` and ``importlib.resources`` read it);
        it has nothing to run, as it ran under its new name. A gathered one finds its names on first use."""
        spec = module.__spec__
        if spec is not None and spec.loader is self and isinstance(spec.loader_state, importlib.machinery.ModuleSpec):
            module.__spec__ = spec.loader_state
            return
        sources = GATHERED.get(module.__name__)
        if sources is None:
            return
        home_of = {name: source for source, names in sources.items() for name in names}

        def __getattr__(name: str) -> object:  # imported on first use: xpnet.controls loads no CLI for train_step
            if name not in home_of:
                raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(home_of[name]), name)
            setattr(module, name, value)
            return value

        module.__dict__.update(
            __getattr__=__getattr__,
            __all__=sorted(home_of),
            __file__=__file__,
            __doc__=f"``{module.__name__}``: old names, now in " + ", ".join(f"``{m}``" for m in sources),
        )

    def get_code(self, fullname: str) -> types.CodeType:
        """For ``python -m xpnet.<old name>``: run the module under its new name as ``__main__``."""
        new = new_name(fullname) or fullname
        return compile(f"import runpy\nrunpy.run_module({new!r}, run_name='__main__', alter_sys=True)\n", new, "exec")

    def is_package(self, fullname: str) -> bool:
        return False


def install() -> None:
    """Put the old names first on ``sys.meta_path`` (once): ahead of the path finder, so that a submodule of a
    moved package is never imported a second time under its old name."""
    if not any(isinstance(f, OldNames) for f in sys.meta_path):
        sys.meta_path.insert(0, OldNames())
