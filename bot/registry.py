"""Name → class registries for plugin families (sources, rules, notifiers).

A module registers its class under the name users write in YAML (``type: cross``); nothing else
has to change to add one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of plugin classes of one family."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._items: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: ``@rules.register("cross")``."""

        def decorate(cls: type[T]) -> type[T]:
            if name in self._items and self._items[name] is not cls:
                raise ValueError(f"{self.family} {name!r} registered twice")
            self._items[name] = cls
            return cls

        return decorate

    def get(self, name: str) -> type[T]:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.family} {name!r}; known: {', '.join(sorted(self._items))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))


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
