"""Which params keys and project files a stage really reads: the other half of the deps check.

``stagedeps`` derives a stage's code deps from its script's imports; the params keys it reads
are often computed (``params[family]``), so they are found at run time instead. With
``$MNISTGAN_PARAMS_LOG`` set and ``src/mnistgan_tools/hooks`` on ``PYTHONPATH``, Python's
``sitecustomize`` calls :func:`install` before a stage starts: ``mnistgan.pipeline.params.load``
then returns a :class:`Tracked` dict, and when the process ends one JSON line is appended to
the log: its argv, the params keys it read and the project files it imported. The end-to-end
test compares them with each stage's ``params:`` and ``deps`` in dvc.yaml.

Tooling, not study code: no stage imports this module, so it is in no stage's deps and the
stages run exactly as they do without it.
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.util
import json
import os
import sys

TARGET = "mnistgan.pipeline.params"


class Tracked(dict):
    """Validated params that note which keys the code reads (``read``, dotted paths).

    A leaf read notes its full key (``ccgan.lr``); anything that takes a mapping whole
    (iterating it, ``items()``, ``len``) notes the mapping's own key (``hybrid.mixes``), so
    the set covers everything the result can depend on. ``run_stage`` hands stages a Tracked
    when ``$MNISTGAN_PARAMS_LOG`` is set, and the tests compare what was read with the
    ``params:`` DVC declares for the stage: a read that no declaration covers is a stage that
    could go stale. Pure bookkeeping: values and behaviour are those of the plain dict.
    """

    def __init__(self, data: dict, prefix: str = "", read: set[str] | None = None):
        super().__init__(data)
        self._prefix, self.read = prefix, read if read is not None else set()

    def _note(self, key=None) -> None:
        self.read.add(f"{self._prefix}{key}" if key is not None else self._prefix.rstrip(".") or "*")

    def _wrap(self, key, value):
        return Tracked(value, f"{self._prefix}{key}.", self.read) if isinstance(value, dict) else value

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if not isinstance(value, dict):
            self._note(key)
        return self._wrap(key, value)

    def get(self, key, default=None):
        return self[key] if key in self else default

    def __contains__(self, key):
        self._note(key)
        return super().__contains__(key)

    def __iter__(self):
        self._note()
        return super().__iter__()

    def __len__(self):
        self._note()
        return super().__len__()

    def keys(self):
        self._note()
        return super().keys()

    def items(self):
        self._note()
        return [(k, self._wrap(k, v)) for k, v in super().items()]

    def values(self):
        return [v for _, v in self.items()]


def covers(declared: list[str], key: str) -> bool:
    """Whether a DVC ``params:`` list (``seed``, ``gan``, ``dcgan.lr``) covers the dotted ``key``."""
    return key != "*" and any(key == d or key.startswith(d + ".") for d in declared)


class _WrapLoad(importlib.abc.MetaPathFinder):
    """Import hook: once ``mnistgan.pipeline.params`` has run, its ``load`` returns a Tracked dict."""

    def __init__(self, state: dict):
        self.state = state

    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        sys.meta_path.remove(self)  # find the real spec without finding ourselves again
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_and_wrap(module):
            exec_module(module)
            load = module.load

            def tracked_load(*args, **kwargs):
                self.state["params"] = Tracked(load(*args, **kwargs))
                return self.state["params"]

            module.load = tracked_load

        spec.loader.exec_module = exec_and_wrap
        return spec


def install(log: str) -> None:
    """Track params reads in this process and append its record to ``log`` at exit."""
    state: dict = {}
    sys.meta_path.insert(0, _WrapLoad(state))
    root = os.getcwd()  # DVC runs every stage command from the project root

    def write_record() -> None:
        if "params" not in state:
            return  # not a stage (`dvc` itself, git hooks, ...): it never loaded params.yaml
        paths = {os.path.relpath(os.path.abspath(m.__file__), root) for m in list(sys.modules.values())
                 if getattr(m, "__file__", None) and os.path.isabs(m.__file__)}
        files = sorted(f for f in paths if f.startswith((os.path.join("src", "mnistgan", ""), "stages" + os.sep)))
        record = {"argv": sys.argv, "params": sorted(state["params"].read), "files": files}
        with open(log, "a") as f:
            f.write(json.dumps(record) + "\n")

    atexit.register(write_record)
