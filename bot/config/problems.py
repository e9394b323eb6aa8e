"""Where a config problem is and how it reads: ``FILE:LINE: key.path: message``.

:class:`Problems` collects every problem of one load (never just the first), locating each by
the YAML line of its key path; :func:`pydantic_message` turns pydantic's errors into sentences
that name the wrong value and suggest the key meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.config.values import describe
from bot.errors import ConfigProblem
from bot.yaml12 import LoadedYaml


def format_path(loc: tuple[str | int, ...]) -> str:
    """``("rules", 1, "level")`` → ``rules[1].level``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def pydantic_message(error: Mapping[str, Any], model: type[BaseModel] | None) -> str:
    """One pydantic error as a sentence naming the wrong value ("did you mean" from
    ``model``'s keys for an unknown one)."""
    kind = error["type"]
    given = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        field = str(error["loc"][-1])
        hint = ""
        if model is not None:
            close = difflib.get_close_matches(field, list(model.model_fields), n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
        return f"unknown key{hint}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"expected a number, got {describe(given)}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"expected a whole number, got {describe(given)}"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false, got {describe(given)}"
    if kind in ("string_type",):
        return f"expected a text value, got {describe(given)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping of keys, got {describe(given)}"
    if kind in ("list_type",):
        return f"expected a list, got {describe(given)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"expected one of {expected}; got {describe(given)}"
    if kind == "string_pattern_mismatch":
        return f"{describe(given)} may only contain letters, digits and _ . - ^ ="
    if kind in ("date_from_datetime_parsing", "date_parsing", "date_type"):
        return f"expected a date such as 2026-12-31, got {describe(given)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"{error['msg'].lower()}, got {describe(given)}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


def _model_at(root: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of ``loc`` (for 'did you mean')."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            # dict[str, Model]: the key is a user name; keep the model of the value.
            continue
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            for candidate in getattr(annotation, "__args__", ()):
                for inner in getattr(candidate, "__args__", ()):
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        model = inner
    return model


class Problems:
    """The problems (errors) and warnings of one load, each located at its YAML line."""

    def __init__(self, file: str, loaded: LoadedYaml) -> None:
        self.file = file
        self.loaded = loaded
        self.items: list[ConfigProblem] = []
        self.warnings: list[ConfigProblem] = []
        #: path → environment variables that were unset there (see substitute_env)
        self.unset: dict[tuple[str | int, ...], list[str]] = {}

    def unset_hint(self, loc: tuple[str | int, ...]) -> str:
        """``"${VAR} is not set"`` when ``loc`` came from unset variables, else ``""``."""
        names = self.unset.get(tuple(loc))
        if not names:
            return ""
        refs = ", ".join(f"${{{name}}}" for name in names)
        return f"{refs} {'is' if len(names) == 1 else 'are'} not set"

    def _problem(self, loc: tuple[str | int, ...], message: str) -> ConfigProblem:
        hint = self.unset_hint(loc)
        if hint and hint not in message:
            message = f"{message} ({hint})"
        return ConfigProblem(self.file, self.loaded.line_of(loc), format_path(loc), message)

    def add(self, loc: tuple[str | int, ...], message: str) -> None:
        self.items.append(self._problem(loc, message))

    def warn(self, loc: tuple[str | int, ...], message: str) -> None:
        self.warnings.append(self._problem(loc, message))

    def add_validation(
        self, prefix: tuple[str | int, ...], exc: ValidationError, model: type[BaseModel]
    ) -> None:
        for error in exc.errors():
            loc = tuple(error["loc"])
            # pydantic names union/annotated branches in loc ("function-before[...]"); drop them.
            loc = tuple(p for p in loc if not (isinstance(p, str) and "[" in p))
            self.add((*prefix, *loc), pydantic_message(error, _model_at(model, loc) or model))
