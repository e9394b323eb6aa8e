"""``python -m bot schema``: a JSON Schema of ``config.yaml``, generated from the config model.

Editors read it through yaml-language-server (``config.yaml``'s first line names it), so keys
autocomplete and mistakes are flagged while the trader types. The schema comes from the same
pydantic models :func:`bot.config.load_config` validates with: the top-level sections, then
``sources`` and ``rules`` as discriminated unions over the registries (``oneOf`` by the ``type``
constant), so each rule is checked against its own type's keys. Values the loader parses from
text (durations ``5m``, distances ``1%``, dates, times of day, windows, byte sizes) are
described by what users write, not by the Python type they become.

``check`` stays the authority: the schema cannot know cross references (a rule's symbol must be
defined) and ``${VAR}`` references are accepted wherever a value goes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any, Literal, Union

from pydantic import BaseModel, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

SCHEMA_FILE = "config.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: ``${VAR}`` / ``${VAR:-default}``: substituted from the environment before validation.
_ENV_REF = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"
_DURATION = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|sec|m|min|h|d|w)?\s*$"},
        {"type": "number", "minimum": 0},
    ],
    "description": "a duration: 30s, 5m, 2h, 1d, 1w (a bare number is seconds)",
}
_THRESHOLD = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*[-+]?\d+(\.\d+)?\s*(%|pt|pts|points?)?\s*$"},
        {"type": "number"},
    ],
    "description": "a distance: a percentage (1%) or points (20, 20pt)",
}
#: Schemas of values parsed from text, by the name of the parsing function (a BeforeValidator
#: in bot/config.py or a plugin module). Names, not objects: the loader may move between
#: modules without the schema changing.
_PARSED: dict[str, dict[str, Any]] = {
    "parse_duration": _DURATION,
    "parse_poll_interval": _DURATION,
    "parse_threshold": _THRESHOLD,
    "parse_date": {
        "type": "string",
        "pattern": r"^\d{4}-\d{2}-\d{2}$",
        "description": "a date: 2026-12-31",
    },
    "parse_clock_time": {
        "type": "string",
        "pattern": r"^([01]?\d|2[0-3]):[0-5]\d$",
        "description": 'a time of day: "16:15" (quoted)',
    },
    "parse_quiet_hours": {
        "type": "string",
        "pattern": r"^\s*([01]?\d|2[0-3]):[0-5]\d\s*-\s*([01]?\d|2[0-3]):[0-5]\d\s*$",
        "description": 'a daily window: "22:00-07:00" (may wrap midnight)',
    },
    "parse_window": {
        "type": "string",
        "pattern": r"^\s*(\d+d?|[mMqQyY][tT][dD])\s*$",
        "description": "a window: 1d, 5d, 252d (trading sessions), mtd, qtd or ytd",
    },
    "parse_chat_id": {
        "anyOf": [
            {"type": "integer"},
            {"type": "string", "pattern": r"^(-?\d+|@[A-Za-z][A-Za-z0-9_]{3,})?$"},
            {"type": "null"},
        ],
        "description": "a chat id: a number (negative for groups) or @channelname",
    },
    "_check_zone": {"type": "string", "description": "an IANA time zone: America/New_York"},
}


class _Generator(GenerateJsonSchema):
    """pydantic's generator, taught what users write for the values the loader parses."""

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> Any:
        name = getattr(schema["function"]["function"], "__name__", "")
        if name in _PARSED:
            return dict(_PARSED[name])
        if name == "_as_list":  # StrList: one name, or a list of names
            inner = self.generate_inner(schema["schema"])
            return {"anyOf": [inner.get("items", {"type": "string"}), inner]}
        return super().function_before_schema(schema)

    def dataclass_schema(self, schema: core_schema.DataclassSchema) -> JsonSchemaValue:
        return {}  # only reached by a parsed type not in _PARSED: accept anything, check decides

    def encode_default(self, dft: Any) -> Any:
        """Defaults as users write them (``15s``, not ISO 8601 ``PT15S``)."""
        from datetime import date, timedelta

        from bot.config import format_duration

        if isinstance(dft, timedelta):
            return format_duration(dft)
        if isinstance(dft, date):
            return dft.isoformat()
        if dataclasses.is_dataclass(dft) and not isinstance(dft, type):
            return str(dft)  # Threshold("10%"), QuietHours
        return super().encode_default(dft)

    def generate(self, schema: Any, mode: Any = "validation") -> JsonSchemaValue:
        result = super().generate(schema, mode=mode)
        return {"$schema": DIALECT, **result}


def _typed_union(registry: Any, prefix: str) -> Any:
    """``Union[…]`` of every registered params model, each narrowed to its own ``type``
    constant. (pydantic's own ``discriminator=`` refuses the models' strict-scalar
    before-validator on ``type``; :func:`_discriminate` turns the union into a ``oneOf``.)"""
    variants = []
    for name in registry.names():
        model = registry.get(name).params_model
        narrowed: dict[str, Any] = {"type": (Literal[name], ...)}
        variants.append(
            create_model(f"{prefix}_{name}", __base__=model, __doc__=model.__doc__, **narrowed)
        )
    if len(variants) == 1:
        return variants[0]
    return Union[tuple(variants)]  # noqa: UP007


def config_model() -> type[BaseModel]:
    """The whole config file as one pydantic model (for the schema only: the loader validates
    section by section to report every problem with its line)."""
    from bot import config
    from bot.rules import RULES
    from bot.sources import SOURCES

    source: Any = _typed_union(SOURCES, "Source")
    rule: Any = _typed_union(RULES, "Rule")
    fields: dict[str, Any] = {
        "sources": (dict[str, source], {}),
        "symbols": (dict[str, config.SymbolConfig], {}),
        "rules": (list[rule], []),
    }
    top: type[BaseModel] = config.TopLevel
    model: type[BaseModel] = create_model(
        "IndexAlertBotConfig",
        __base__=top,
        __doc__="config.yaml of the Index Alert Bot (see README, Config reference)",
        **fields,
    )
    return model


_META = ("title", "description", "default", "examples", "deprecated")


def _takes_any_string(node: dict[str, Any]) -> bool:
    if node.get("type") == "string" and "pattern" not in node and "enum" not in node:
        return True
    return any(_takes_any_string(branch) for branch in node.get("anyOf", ()))


def _env_ref_allowed(node: Any) -> Any:
    """``node`` (one value's schema) also accepting a ``${VAR}`` reference, metadata kept
    outside so editors still show the key's title, default and description."""
    if not isinstance(node, dict) or _takes_any_string(node):
        return node
    if "const" in node or "$ref" in node or "oneOf" in node:  # a rule's type, a section
        return node
    if node.get("type") in ("object", "array"):
        return node
    meta = {key: node[key] for key in _META if key in node}
    core = {key: value for key, value in node.items() if key not in _META}
    return {**meta, "anyOf": [core, {"$ref": "#/$defs/EnvRef"}]}


def _accept_env_refs(node: Any) -> Any:
    """Let a ``${VAR}`` stand for any value (it is substituted before validation)."""
    if isinstance(node, list):
        return [_accept_env_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _accept_env_refs(value) for key, value in node.items()}
    if isinstance(node.get("properties"), dict):
        node["properties"] = {k: _env_ref_allowed(v) for k, v in node["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _env_ref_allowed(node[key])
    return node


def _discriminate(union: dict[str, Any], defs: dict[str, Any]) -> None:
    """``anyOf`` of typed entries → ``oneOf`` plus the OpenAPI-style ``discriminator`` hint:
    exactly one variant matches a given ``type``, and editors show that variant's keys."""
    if "anyOf" not in union:
        return
    variants = union.pop("anyOf")
    union["oneOf"] = variants
    mapping = {}
    for variant in variants:
        ref = variant["$ref"]
        mapping[defs[ref.rsplit("/", 1)[-1]]["properties"]["type"]["const"]] = ref
    union["discriminator"] = {"propertyName": "type", "mapping": mapping}


def build_schema() -> dict[str, Any]:
    """The JSON Schema of ``config.yaml`` (draft 2020-12), as ``config.schema.json`` holds it."""
    schema = config_model().model_json_schema(schema_generator=_Generator)
    properties = schema["properties"]
    _discriminate(properties["sources"]["additionalProperties"], schema["$defs"])
    _discriminate(properties["rules"]["items"], schema["$defs"])
    schema = _accept_env_refs(schema)
    # top-level keys starting with x- are ignored by the loader (a place for YAML anchors)
    schema["patternProperties"] = {"^x-": {}}
    schema.setdefault("$defs", {})["EnvRef"] = {
        "type": "string",
        "pattern": f"^{_ENV_REF}$",
        "description": "${VAR} or ${VAR:-default}, replaced from the environment",
    }
    return schema


def render() -> str:
    """``build_schema()`` as the text committed in ``config.schema.json``."""
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


def add_parser(subparsers: Any) -> None:
    """Register ``schema``."""
    parser = subparsers.add_parser(
        "schema", help=f"print the JSON Schema of the config (as in {SCHEMA_FILE})"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the schema."""
    print(render(), end="")
    return 0
