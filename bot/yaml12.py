"""YAML loading with YAML 1.2 core-schema scalars and the line of every key.

PyYAML implements YAML 1.1, where ``on``, ``off``, ``yes``, ``no``, ``y`` and ``n`` are booleans
and ``16:15`` is the sexagesimal integer 975. In a config where ``on: close`` is a rule option and
``ON``/``NO`` are tickers that is wrong, so this loader resolves scalars like YAML 1.2's core
schema: only ``true``/``false`` are booleans, integers are decimal/0o/0x, no sexagesimals, and
no implicit timestamps (``2026-02-30`` is the string it looks like; the config validator parses
dates where it expects one and says where a bad one is).

A config file is also untrusted input: :data:`LIMITS` bounds its size, nesting depth, alias count
and the number of nodes aliases expand to, so a 1 KB "billion laughs" or a 10,000-deep list is a
located :class:`YamlLimitError` in milliseconds instead of minutes of CPU and gigabytes of memory.
Merge keys (``<<: *base``) follow YAML's merge semantics: the mapping's own keys win.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

Path = tuple[str | int, ...]


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema implicit resolvers."""


_YAML11_ONLY = ("bool", "int", "float", "timestamp", "value")
_MERGE_TAG = "tag:yaml.org,2002:merge"

# Drop YAML 1.1 resolvers for bool/int/float, then add YAML 1.2 core-schema ones.
Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        # YAML 1.1 only: 1.1 bools/ints/floats (replaced below), timestamps and the "=" value key
        if tag not in {f"tag:yaml.org,2002:{kind}" for kind in _YAML11_ONLY}
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


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on an untrusted YAML document (generous: the shipped config is ~5 KB, depth 5)."""

    max_bytes: int = 1_000_000  #: file size (checked before parsing)
    max_depth: int = 50  #: nesting of mappings and sequences
    max_aliases: int = 10_000  #: ``*alias`` references
    max_nodes: int = 100_000  #: nodes in the document once every alias is expanded


LIMITS = YamlLimits()


class YamlLimitError(ValueError):
    """The document exceeds :data:`LIMITS` or is otherwise unusable (a recursive alias, a bad
    merge); ``line`` is 1-based (``None``: the whole file)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


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


def check_size(text: str, limits: YamlLimits | None = None) -> None:
    """Refuse a document larger than ``limits.max_bytes`` (default :data:`LIMITS`) before any
    parsing."""
    limits = limits or LIMITS
    if len(text) > limits.max_bytes:
        raise YamlLimitError(
            f"the config file is larger than {limits.max_bytes:,} bytes; refusing to parse it"
        )


def load_yaml(text: str, limits: YamlLimits | None = None) -> LoadedYaml:
    """Parse one YAML document within ``limits`` (default :data:`LIMITS`, read at call time so
    a deployment may replace it).

    Raises :class:`yaml.YAMLError` with marks on bad syntax, :class:`YamlLimitError` (with the
    line) when the document is too big, too deep, too alias-heavy or recursive.
    """
    limits = limits or LIMITS
    check_size(text, limits)
    _check_events(text, limits)  # streaming and non-recursive: safe before composing
    loader = Yaml12Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:  # only reachable when the event check stopped at a syntax error
            raise YamlLimitError(f"nested deeper than {limits.max_depth} levels") from None
        if node is None:
            return LoadedYaml(None, {})
        _check_expansion(node, limits)
        walker = _Walker(loader)
        data = walker.walk(node, ())
        return LoadedYaml(data, walker.lines, walker.duplicates)
    finally:
        loader.dispose()


# libyaml's parser when present (an order of magnitude faster: a limit trips in milliseconds);
# only its event stream is used, so its resolution rules do not matter.
_EVENT_LOADER: Any = getattr(yaml, "CSafeLoader", None) or Yaml12Loader


def _check_events(text: str, limits: YamlLimits) -> None:
    """Bound nesting depth, alias count and node count on the event stream.

    PyYAML's composer recurses once per nesting level (a RecursionError at ~500 levels), so
    depth must be checked on events, which the parser produces without recursion.
    """
    for loader in dict.fromkeys((_EVENT_LOADER, Yaml12Loader)):
        depth = aliases = nodes = 0
        try:
            for event in yaml.parse(text, Loader=loader):
                depth, aliases, nodes = _count(event, depth, aliases, nodes, limits)
            return
        except yaml.YAMLError:
            # libyaml refuses some documents PyYAML reads (and has its own depth limit): count
            # again with PyYAML's parser; a real syntax error is reported by the full parse.
            continue


def _count(
    event: yaml.Event, depth: int, aliases: int, nodes: int, limits: YamlLimits
) -> tuple[int, int, int]:
    """One step of :func:`_check_events`: the new (depth, aliases, nodes) after ``event``."""
    if isinstance(event, yaml.CollectionStartEvent):
        depth += 1
        if depth > limits.max_depth:
            raise YamlLimitError(
                f"nested deeper than {limits.max_depth} levels", _event_line(event)
            )
    elif isinstance(event, yaml.CollectionEndEvent):
        depth -= 1
    elif isinstance(event, yaml.AliasEvent):
        aliases += 1
        if aliases > limits.max_aliases:
            raise YamlLimitError(f"more than {limits.max_aliases:,} aliases", _event_line(event))
    if isinstance(event, yaml.NodeEvent):
        nodes += 1
        if nodes > limits.max_nodes:
            raise YamlLimitError(
                f"more than {limits.max_nodes:,} values in one file", _event_line(event)
            )
    return depth, aliases, nodes


def _event_line(event: yaml.Event) -> int | None:
    mark = event.start_mark
    return int(mark.line) + 1 if mark is not None else None


def _check_expansion(root: yaml.Node, limits: YamlLimits) -> None:
    """Refuse documents whose aliases expand to more than ``limits.max_nodes`` nodes.

    Sizes are computed once per distinct node (aliases share nodes), so this is linear in the
    file even when the expansion is exponential; a node that contains itself is refused too.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        known = sizes.get(key)
        if known is not None:
            return known
        if key in active:
            raise YamlLimitError("recursive alias (a value contains itself)", _line(node))
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        active.discard(key)
        if total > limits.max_nodes:
            raise YamlLimitError(
                f"aliases expand to more than {limits.max_nodes:,} values", _line(node)
            )
        sizes[key] = total
        return total

    size(root)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class _Walker:
    """Builds plain data from the node graph, recording lines, duplicates and merges."""

    def __init__(self, loader: Yaml12Loader) -> None:
        self.loader = loader
        self.lines: dict[Path, int] = {}
        self.duplicates: list[Path] = []

    def walk(self, node: yaml.Node, path: Path) -> Any:
        self.lines.setdefault(path, _line(node))
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key, key_node, value_node in self._pairs(node, path, report=True):
                child = (*path, key)
                self.lines[child] = _line(key_node)
                result[key] = self.walk(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                child = (*path, index)
                self.lines[child] = _line(item)
                items.append(self.walk(item, child))
            return items
        return self.loader.construct_object(node, deep=True)

    def _key(self, key_node: yaml.Node) -> str:
        key = self.loader.construct_object(key_node, deep=True)
        return key if isinstance(key, str) else str(key)

    def _pairs(
        self, node: yaml.MappingNode, path: Path, *, report: bool
    ) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """The mapping's (key, key node, value node) with ``<<`` merges applied.

        Own keys win over merged ones, and of several merged mappings the first wins (the YAML
        merge-key rules). ``report``: record own duplicate keys (once, where they are written).
        """
        own: dict[str, tuple[str, yaml.Node, yaml.Node]] = {}
        merges: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self._key(key_node)
            if key in own and report:
                self.duplicates.append((*path, key))
            own.pop(key, None)  # the last one wins, in its own position
            own[key] = (key, key_node, value_node)
        inherited: dict[str, tuple[str, yaml.Node, yaml.Node]] = {}
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise YamlLimitError(
                        "a merge key (<<) takes a mapping or a list of mappings, such as "
                        "<<: *defaults",
                        _line(source),
                    )
                for key, key_node, value_node in self._pairs(source, path, report=False):
                    if key not in own and key not in inherited:
                        inherited[key] = (key, key_node, value_node)
        return [*own.values(), *inherited.values()]
