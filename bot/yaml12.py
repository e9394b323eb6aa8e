"""YAML loading with YAML 1.2 core-schema scalars and the line of every key.

PyYAML implements YAML 1.1, where ``on``, ``off``, ``yes``, ``no``, ``y`` and ``n`` are booleans
and ``16:15`` is the sexagesimal integer 975. In a config where ``on: close`` is a rule option and
``ON``/``NO`` are tickers that is wrong, so this loader resolves scalars like YAML 1.2's core
schema: only ``true``/``false`` are booleans, integers are decimal/0o/0x, no sexagesimals.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

Path = tuple[str | int, ...]


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema implicit resolvers."""


# Drop YAML 1.1 resolvers for bool/int/float, then add YAML 1.2 core-schema ones.
Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class LoadedYaml:
    """A parsed YAML document plus the 1-based line of every mapping key and sequence item."""

    def __init__(
        self, data: Any, lines: dict[Path, int], duplicates: list[Path] | None = None
    ) -> None:
        self.data = data
        self.lines = lines
        #: keys that appear twice in one mapping (YAML keeps the last; we report them)
        self.duplicates = duplicates or []

    def line_of(self, path: Path) -> int | None:
        """Line of ``path`` or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return self.lines.get((), None)


def load_yaml(text: str) -> LoadedYaml:
    """Parse one YAML document. Raises :class:`yaml.YAMLError` with marks on bad syntax."""
    loader = Yaml12Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Path, int] = {}
        duplicates: list[Path] = []
        if node is None:
            return LoadedYaml(None, {})
        data = _walk(loader, node, (), lines, duplicates)
        return LoadedYaml(data, lines, duplicates)
    finally:
        loader.dispose()


def _walk(
    loader: Yaml12Loader,
    node: yaml.Node,
    path: Path,
    lines: dict[Path, int],
    duplicates: list[Path],
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                key = str(key)
            child = (*path, key if isinstance(key, str) else str(key))
            if child[-1] in result:
                duplicates.append(child)
            lines[child] = key_node.start_mark.line + 1
            result[child[-1]] = _walk(loader, value_node, child, lines, duplicates)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            items.append(_walk(loader, item, child, lines, duplicates))
        return items
    return loader.construct_object(node, deep=True)
