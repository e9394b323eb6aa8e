"""Loading a config: read, substitute ``${VAR}``, validate, cross-check, locate every problem.

:func:`load_config` reads YAML (1.2 scalars, see :mod:`bot.yaml12`), substitutes ``${VAR}``
and ``${VAR:-default}`` from the environment (:mod:`bot.config.env`), validates every section
with pydantic and reports *every* problem as ``FILE:LINE: key.path: message``. Sources and rules
are validated by the params model their registered class declares, so a new rule type brings
its own schema. :func:`read_config` is how commands find the config (``--config``,
``$BOT_CONFIG``, ``./config.yaml``, else the embedded default).

This is the only config module that reads the plugin registries (``bot.sources``,
``bot.rules``). They are imported inside the functions that use them, at the first load, not
at import: every plugin imports its params base class from :mod:`bot.config`, whose package
imports this module, so a module-level import of the registries would be an import cycle
(tests/test_imports.py fails on module-level cycles and allows such in-function imports).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ValidationError

from bot import yaml12
from bot.calendars import CALENDARS
from bot.config.env import protect_env_refs, substitute_env
from bot.config.model import (
    Config,
    RuleParams,
    SourceParams,
    StateConfig,
    SymbolConfig,
    TopLevel,
    config_dir,
)
from bot.config.problems import Problems, pydantic_message
from bot.config.values import describe
from bot.context import TEMPLATE_FIELDS as CONTEXT_FIELDS  # facts of the symbol
from bot.errors import ConfigError, ConfigProblem, register_secret
from bot.templates import template_problems
from bot.yaml12 import YamlLimitError, check_size, load_yaml

log = logging.getLogger("bot")

DEFAULT_CONFIG = "config.yaml"
EMBEDDED_CONFIG = "<embedded default config>"


def config_path(arg: str | None) -> str:
    """``--config``, else ``$BOT_CONFIG``, else ``./config.yaml``."""
    return arg or os.environ.get("BOT_CONFIG") or DEFAULT_CONFIG


def read_config(arg: str | None) -> Config:
    """Load the config a command was pointed at (``arg`` is its ``--config``, or ``None``).

    Falls back to the embedded default when no path was asked for and ``./config.yaml`` does
    not exist (so a fresh install runs with no files at all)."""
    path = config_path(arg)
    if arg is None and "BOT_CONFIG" not in os.environ and not Path(path).exists():
        text = resources.files("bot").joinpath("default_config.yaml").read_text("utf-8")
        log.info("no %s here: using the embedded default config", DEFAULT_CONFIG)
        return parse_config(text, EMBEDDED_CONFIG, os.environ)
    return load_config(path)


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute, validate. Raises :class:`ConfigError` listing every problem."""
    file = str(path)
    try:
        with open(file, encoding="utf-8") as stream:
            # one byte-ish more than the limit: enough to know it is too big, never 60 MB
            text = stream.read(yaml12.LIMITS.max_bytes + 1)
    except OSError as exc:
        raise ConfigError([ConfigProblem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(file, None, "", f"not UTF-8 text: {exc}")]) from None
    return parse_config(text, file, os.environ if environ is None else environ)


def parse_config(
    text: str, file: str, environ: Mapping[str, str], *, today: date | None = None
) -> Config:
    """Validate config text. ``file`` names it in messages and anchors relative paths;
    ``today`` (default: the date now in the config's time zone) dates the warnings."""
    try:
        check_size(text)
        text, refs = protect_env_refs(text)
        loaded = load_yaml(text)
    except YamlLimitError as exc:
        raise ConfigError([ConfigProblem(file, exc.line, "", exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = f" (column {mark.column + 1})" if mark else ""
        what = exc.problem or exc.context or "syntax error"
        started = exc.context_mark
        if exc.problem and exc.context and started and mark and started.line != mark.line:
            # PyYAML notices an unclosed bracket or quote lines later; say where it began.
            column = f"{column[:-1]}; {exc.context} that starts at line {started.line + 1})"
        raise ConfigError(
            [ConfigProblem(file, line, "", f"invalid YAML: {what}{column}")]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(file, None, "", f"invalid YAML: {exc}")]) from None

    problems = Problems(file, loaded)
    data = loaded.data if loaded.data is not None else {}
    if not isinstance(data, dict):
        problems.add((), f"expected a mapping of sections at the top, got {describe(data)}")
        raise ConfigError(problems.items)
    for duplicate in loaded.duplicates:
        problems.add(duplicate, "duplicate key (the same key appears twice in this mapping)")
    data = substitute_env(data, refs, environ, (), problems.unset)

    sections: dict[str, Any] = {}
    for key, value in data.items():
        if key.startswith("x-"):
            continue  # a place for YAML anchors (`x-defaults: &defaults …`), as in Compose files
        if key not in TopLevel.model_fields:
            problems.add(
                (key,), pydantic_message({"type": "extra_forbidden", "loc": (key,)}, TopLevel)
            )
            continue
        if key in ("sources", "symbols", "rules"):
            expected = list if key == "rules" else dict
            if not isinstance(value, expected):
                kind = "a list of rules" if key == "rules" else "a mapping of names"
                problems.add((key,), f"expected {kind}, got {describe(value)}")
                value = expected()
            sections[key] = value
            continue
        try:
            sections[key] = TopLevel.model_validate({key: value}).__dict__[key]
        except ValidationError as exc:
            problems.add_validation((), exc, TopLevel)
    top = TopLevel.model_construct(
        **{k: v for k, v in TopLevel().__dict__.items() if k not in sections}, **sections
    )
    symbols: dict[str, SymbolConfig] = {}
    for symbol_id, body in top.symbols.items():
        try:
            symbols[str(symbol_id)] = SymbolConfig.model_validate(body)
        except ValidationError as exc:
            problems.add_validation(("symbols", str(symbol_id)), exc, SymbolConfig)
    sources = _validate_sources(top.sources, problems)
    rules = _validate_rules(top.rules, problems)
    _check_references(top, symbols, sources, rules, problems)
    _check_files(file, symbols, problems)
    if problems.items:
        raise ConfigError(sorted(problems.items, key=lambda p: p.line or 0))
    if today is None:
        today = datetime.now(ZoneInfo(top.timezone)).date()
    for raw_index, params in rules:
        if params.expires is not None and params.expires < today:
            problems.warn(
                ("rules", raw_index, "expires"),
                f"{params.expires} is in the past: rule {params.id!r} never fires",
            )
    register_secret(top.telegram.token)
    return Config(
        path=file,
        timezone=top.timezone,
        telegram=top.telegram,
        state=_anchored_state(top.state, file),
        sources=sources,
        symbols=symbols,
        poll=top.poll,
        sanity=top.sanity,
        delivery=top.delivery,
        rules=[params for _, params in rules],
        warnings=tuple(problems.warnings),
        monitor=top.monitor,
        heartbeat=top.heartbeat,
    )


def _anchored_state(state: StateConfig, file: str) -> StateConfig:
    """``state`` with a relative ``sqlite:///`` path made absolute against the config file's
    directory (as a csv ``file:`` is), so the state does not move with the working directory."""
    url = state.url
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/") or url == prefix + ":memory:":
        return state
    return state.model_copy(update={"url": prefix + str(config_dir(file) / url[len(prefix) :])})


def _check_files(file: str, symbols: dict[str, SymbolConfig], problems: Problems) -> None:
    """Every ``file:`` a symbol names exists (relative to the config file's directory)."""
    base = config_dir(file)
    for symbol_id, spec in symbols.items():
        if not spec.file:
            continue
        path = Path(spec.file).expanduser()
        if not path.is_absolute():
            path = base / path
        if not path.is_file():
            what = "not a file" if path.exists() else "no such file"
            problems.add(("symbols", symbol_id, "file"), f"{what}: {path}")


def _validate_typed(
    loc: tuple[str | int, ...], body: Any, registry: Any, what: str, problems: Problems
) -> tuple[Any, BaseModel] | None:
    """Validate one ``{type: …, …}`` entry with the params model of its registered type.

    Returns (the registered class, the validated params), or ``None`` after recording why not.
    """
    if not isinstance(body, dict):
        problems.add(loc, f"expected a mapping with a 'type' key, got {describe(body)}")
        return None
    kind = body.get("type")
    if kind not in registry:
        problems.add(
            (*loc, "type"),
            f"unknown {what} {kind!r}; known: {', '.join(registry.names())}"
            if kind is not None
            else f"required key is missing (one of: {', '.join(registry.names())})",
        )
        return None
    plugin = registry.get(str(kind))
    model = plugin.params_model
    try:
        return plugin, model.model_validate(body)
    except ValidationError as exc:
        problems.add_validation(loc, exc, model)
        return None


def _validate_sources(raw: dict[str, Any], problems: Problems) -> dict[str, SourceParams]:
    """Validate each source by its type's params model."""
    from bot.sources import SOURCES

    result: dict[str, SourceParams] = {}
    for name, body in raw.items():
        validated = _validate_typed(("sources", name), body, SOURCES, "source type", problems)
        if validated is not None:
            params = validated[1]
            assert isinstance(params, SourceParams)
            result[name] = params
    return result


def _validate_rules(raw: list[Any], problems: Problems) -> list[tuple[int, RuleParams]]:
    """Validate each rule by its type's params model; returns (index in YAML, params) pairs."""
    from bot.rules import RULES

    result: list[tuple[int, RuleParams]] = []
    for index, body in enumerate(raw):
        loc: tuple[str | int, ...] = ("rules", index)
        validated = _validate_typed(loc, body, RULES, "rule type", problems)
        if validated is None:
            continue
        rule_class, params = validated
        assert isinstance(params, RuleParams)
        if params.template is not None:
            allowed = (
                RuleParams.common_template_fields | rule_class.template_fields | set(CONTEXT_FIELDS)
            )
            for message in template_problems(params.template, allowed):
                problems.add((*loc, "template"), message)
        result.append((index, params))
    return result


def _check_references(
    raw: TopLevel,
    symbols: dict[str, SymbolConfig],
    sources: dict[str, SourceParams],
    rules: list[tuple[int, RuleParams]],
    problems: Problems,
) -> None:
    for symbol_id, spec in symbols.items():
        for index, source_name in enumerate(spec.source):
            if source_name not in raw.sources:
                known = ", ".join(sorted(raw.sources)) or "none defined"
                loc: tuple[str | int, ...] = ("symbols", symbol_id, "source")
                if len(spec.source) > 1:
                    loc = (*loc, index)
                problems.add(loc, f"unknown source {source_name!r}; defined sources: {known}")
        if spec.calendar not in CALENDARS:
            problems.add(
                ("symbols", symbol_id, "calendar"),
                f"unknown calendar {spec.calendar!r}; known: {', '.join(CALENDARS)}",
            )
        for source_name in spec.source:
            source = sources.get(source_name)
            if source is None:
                continue
            from bot.sources import SOURCES

            for message in SOURCES.get(source.type).symbol_problems(symbol_id, spec):
                problems.add(("symbols", symbol_id), message)

    chats = raw.telegram.chats
    if raw.telegram.token:
        for name, chat in chats.items():
            if chat is None:
                loc = ("telegram", "chats", name)
                hint = problems.unset_hint(loc) or "is its environment variable set?"
                problems.add(
                    loc,
                    f"chat {name!r} has no id ({hint}); a token is set, so every named chat "
                    "needs a chat id",
                )
    if raw.telegram.admin_chat is not None and raw.telegram.admin_chat not in chats:
        problems.add(
            ("telegram", "admin_chat"),
            f"unknown chat {raw.telegram.admin_chat!r}; named chats: "
            + (", ".join(chats) or "none"),
        )
    seen: dict[str, int] = {}
    for raw_index, params in rules:
        loc = ("rules", raw_index)
        if params.id in seen:
            problems.add(
                (*loc, "id"), f"duplicate rule id {params.id!r} (also rules[{seen[params.id]}])"
            )
        else:
            seen[params.id] = raw_index
        for symbol in params.watched_symbols():
            if symbol not in raw.symbols:
                known = ", ".join(raw.symbols) or "none defined"
                key = "symbol" if "symbol" in raw.rules[raw_index] else "symbols"
                # raw.symbols: a symbol that failed its own validation still exists
                problems.add((*loc, key), f"unknown symbol {symbol!r}; defined symbols: {known}")
        types = {other.id: other.type for _, other in rules}
        for key, rule_id, wanted in params.watched_rules():
            found = types.get(rule_id)
            if found is None or rule_id == params.id:
                kind = f"{wanted} rules" if wanted else "other rules"
                others = [r for r, t in types.items() if r != params.id and wanted in (None, t)]
                problems.add(
                    (*loc, key),
                    f"unknown rule {rule_id!r}; {kind}: {', '.join(others) or 'none defined'}",
                )
            elif wanted is not None and found != wanted:
                problems.add(
                    (*loc, key), f"rule {rule_id!r} is a {found} rule, not a {wanted} rule"
                )
        for chat in params.chats or []:
            if chat not in chats:
                problems.add(
                    (*loc, "chats"),
                    f"unknown chat {chat!r}; named chats: {', '.join(chats) or 'none'}",
                )
