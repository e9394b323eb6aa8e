"""Name → class registries for plugin families (sources, rules, notifiers).

A module registers its class under the name users write in YAML (``type: cross``); nothing else
has to change to add one. A registry imports its family's modules (``package``) at the first
lookup, not when the package is imported: so a helper module of a plugin package
(``bot.rules.text``) can be imported from anywhere — even from a module a plugin itself imports
— without pulling in, and circling back through, every plugin.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of plugin classes of one family."""

    def __init__(self, family: str, package: str | None = None) -> None:
        self.family = family
        self._items: dict[str, type[T]] = {}
        #: the plugin package whose modules register here, imported at the first lookup
        self._package = package
        self._lock = threading.RLock()
        self._loaded = package is None

    def _load(self) -> None:
        """Import every module of the plugin package once (see :func:`import_plugins`)."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            import importlib

            assert self._package is not None
            package = importlib.import_module(self._package)
            import_plugins(self._package, package.__path__)
            self._loaded = True

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: ``@rules.register("cross")``."""

        def decorate(cls: type[T]) -> type[T]:
            if name in self._items and self._items[name] is not cls:
                raise ValueError(f"{self.family} {name!r} registered twice")
            self._items[name] = cls
            return cls

        return decorate

    def get(self, name: str) -> type[T]:
        """The class registered as ``name``; ``KeyError`` naming the known ones."""
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.family} {name!r}; known: {', '.join(sorted(self._items))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load()
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def import_plugins(package_name: str, package_path: list[str] | Any) -> None:
    """Import every module of a plugin package so each registers itself.

    Dropping ``bot/rules/foo.py`` into the folder is all it takes to add rule type ``foo``.
    Modules named ``base`` or starting with ``_`` are helpers, imported by those who need them.
    """
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(package_path):
        if module.name == "base" or module.name.startswith("_"):
            continue
        importlib.import_module(f"{package_name}.{module.name}")
