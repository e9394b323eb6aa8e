"""The validated config model and its loader.

``load_config`` reads YAML (1.2 scalars, see :mod:`bot.yaml12`), substitutes ``${VAR}`` and
``${VAR:-default}`` from the environment, validates everything with pydantic and reports *every*
problem as ``FILE:LINE: key.path: message``. Sources and rules are validated by the params model
their registered class declares, so a new rule type brings its own schema.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot import yaml12
from bot.envsubst import protect_env_refs, substitute_env
from bot.errors import ConfigError, ConfigProblem, register_secret
from bot.templates import template_problems
from bot.yaml12 import LoadedYaml, YamlLimitError, check_size, load_yaml

# ---------------------------------------------------------------------------------------------
# Value types users write in YAML
# ---------------------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d|w)?\s*$")
_DURATION_UNITS = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


def parse_duration(value: Any) -> timedelta:
    """Parse ``"60s"``, ``"5m"``, ``"2h"``, ``"252d"``, ``"1w"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 60s, 5m, 2h or 1d, got {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    match = _DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 60s, 5m, 2h or 1d, got {value!r}")
    return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])


def format_duration(value: timedelta) -> str:
    """``timedelta(minutes=5)`` → ``"5m"`` (the way users write durations)."""
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]

#: The shortest polling interval: the scheduler's resolution. ``0s`` would poll every second.
MIN_POLL = timedelta(seconds=1)


def parse_poll_interval(value: Any) -> timedelta:
    """A duration of at least :data:`MIN_POLL`."""
    interval = parse_duration(value)
    if interval < MIN_POLL:
        raise ValueError(f"must be at least {format_duration(MIN_POLL)}, got {value!r}")
    return interval


PollInterval = Annotated[
    timedelta,
    BeforeValidator(parse_poll_interval),
    PlainSerializer(format_duration, return_type=str),
]

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_date(value: Any) -> date:
    """``"2026-12-31"`` → a date. The YAML loader keeps dates as text (YAML 1.2), so an
    impossible one such as ``2026-02-30`` is reported here, at its line, with the reason."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = value.strip() if isinstance(value, str) else None
    match = _DATE_RE.match(text) if text is not None else None
    if match is None:
        raise ValueError(f"expected a date such as 2026-12-31, got {_describe(value)}")
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError as exc:
        raise ValueError(
            f"expected a date such as 2026-12-31, got {_describe(value)} ({exc})"
        ) from None


DateValue = Annotated[date, BeforeValidator(parse_date), PlainSerializer(str, return_type=str)]


@dataclass(frozen=True)
class Threshold:
    """A distance: a percentage (``"1%"``) or points (``20``, ``"20pt"``)."""

    amount: float
    percent: bool

    def of(self, base: float) -> float:
        """The distance in points relative to ``base``."""
        return abs(base) * self.amount / 100.0 if self.percent else self.amount

    def __str__(self) -> str:
        return f"{self.amount:g}%" if self.percent else f"{self.amount:g} pt"


_THRESHOLD_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(%|pt|pts|points?)?\s*$")


def parse_threshold(value: Any) -> Threshold:
    """Parse ``"1%"`` (percent), ``20``/``"20pt"`` (points)."""
    if isinstance(value, Threshold):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage such as 1% or points such as 20, got {value!r}")
    if isinstance(value, int | float):
        return Threshold(float(value), percent=False)
    match = _THRESHOLD_RE.match(str(value))
    if not match:
        raise ValueError(f"expected a percentage such as 1% or points such as 20, got {value!r}")
    return Threshold(float(match.group(1)), percent=match.group(2) == "%")


ThresholdValue = Annotated[
    Threshold, BeforeValidator(parse_threshold), PlainSerializer(str, return_type=str)
]

_CLOCK_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_clock_time(value: Any) -> time:
    """Parse ``"16:15"`` into a :class:`datetime.time`."""
    if isinstance(value, time):
        return value
    match = _CLOCK_RE.match(str(value).strip())
    if not match:
        raise ValueError(f'expected a time of day such as "16:15", got {value!r}')
    return time(int(match.group(1)), int(match.group(2)))


ClockTime = Annotated[time, BeforeValidator(parse_clock_time)]


@dataclass(frozen=True)
class QuietHours:
    """A daily window such as ``22:00-07:00`` (may wrap midnight) in the configured time zone."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(value: Any) -> QuietHours:
    if isinstance(value, QuietHours):
        return value
    parts = str(value).split("-")
    if len(parts) != 2:
        raise ValueError(f'expected a window such as "22:00-07:00", got {value!r}')
    try:
        return QuietHours(parse_clock_time(parts[0]), parse_clock_time(parts[1]))
    except ValueError:
        raise ValueError(f'expected a window such as "22:00-07:00", got {value!r}') from None


QuietHoursValue = Annotated[
    QuietHours, BeforeValidator(parse_quiet_hours), PlainSerializer(str, return_type=str)
]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


StrList = Annotated[list[str], BeforeValidator(_as_list)]

_CHAT_RE = re.compile(r"^(-?\d+|@[A-Za-z][A-Za-z0-9_]{3,})$")


def parse_chat_id(value: Any) -> int | str | None:
    """A Telegram chat id: an integer (negative for groups) or ``@channelname``.

    Empty (an unset ``${TELEGRAM_CHAT_ID}``) is ``None``: fine while Telegram is off, an error
    once a token is set (checked by :class:`TelegramConfig`).
    """
    if value is None:
        return None
    if isinstance(value, bool | float):
        raise ValueError(f"expected a chat id (number or @channelname), got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return None
    if not _CHAT_RE.match(text):
        raise ValueError(f"expected a chat id (number or @channelname), got {text!r}")
    return int(text) if text.lstrip("-").isdigit() else text


ChatId = Annotated[int | str | None, BeforeValidator(parse_chat_id)]

_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.=^-]*$"


def _scalar_kinds(annotation: Any) -> set[type]:
    """``bool``/``int``/``float`` among the types of a field (through ``X | None``)."""
    if get_origin(annotation) in (Union, type(int | None)):
        return set().union(*(_scalar_kinds(arg) for arg in get_args(annotation)))
    return {annotation} & {bool, int, float}


class StrictModel(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable.

    Booleans are strict in every section (the README promises only ``true``/``false``; pydantic
    would take ``yes``, ``"off"`` and ``1``), and ``true``/``false`` are not numbers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_scalars(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is None or value is None:
            return value
        kinds = _scalar_kinds(field.annotation)
        if bool in kinds and not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {_describe(value)}")
        if kinds and bool not in kinds and isinstance(value, bool):
            number = "a number" if float in kinds else "a whole number"
            raise ValueError(f"expected {number}, got {_describe(value)}")
        return value


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


class TelegramConfig(StrictModel):
    """``telegram:`` — the Bot API connection and the named chats rules route to."""

    token: str | None = None
    base_url: str = "https://api.telegram.org"
    chats: dict[str, ChatId] = Field(default_factory=dict)
    admin_chat: str | None = None
    timeout: Duration = timedelta(seconds=15)
    # A total deadline per Bot API request: ``timeout`` bounds each read, so an answer that
    # trickles in (or stalls after its headers) could otherwise hold a send far longer.
    # None: twice ``timeout``.
    deadline: Duration | None = None

    @field_validator("token")
    @classmethod
    def _empty_token_is_none(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        return value or None

    @model_validator(mode="after")
    def _chats_set_when_enabled(self) -> TelegramConfig:
        # (a named chat without an id is reported at its own line by _check_references)
        if self.token and not self.chats:
            raise ValueError("a token is set but no chats are named under telegram.chats")
        return self

    @field_validator("deadline")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

    @property
    def request_deadline(self) -> timedelta:
        """The most one Bot API request may take, all reads included (``deadline``)."""
        return self.deadline if self.deadline is not None else 2 * self.timeout

    @property
    def enabled(self) -> bool:
        """Telegram is used only when a token is configured; otherwise alerts go to stdout."""
        return bool(self.token)


class StateConfig(StrictModel):
    """``state:`` — where rule state, history and the outbox live."""

    url: str = "sqlite:///bot-state.sqlite"
    # PostgreSQL only: bounds that keep a dead or half-open connection from stalling a replica
    # (and, through the evaluation lock it may hold, every other replica). Seconds, not minutes.
    connect_timeout: Duration = timedelta(seconds=5)
    #: client side: a store call (connect + transaction) not done by then has its connection
    #: closed and fails; the cycle is retried next time on a new connection
    operation_timeout: Duration = timedelta(seconds=15)
    statement_timeout: Duration = timedelta(seconds=10)
    lock_timeout: Duration = timedelta(seconds=5)
    idle_in_transaction_timeout: Duration = timedelta(seconds=10)
    keepalive_idle: Duration = timedelta(seconds=10)
    keepalive_interval: Duration = timedelta(seconds=5)
    keepalive_count: int = Field(default=3, ge=1)
    tcp_user_timeout: Duration = timedelta(seconds=10)

    @field_validator(
        "connect_timeout",
        "operation_timeout",
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_timeout",
        "keepalive_idle",
        "keepalive_interval",
        "tcp_user_timeout",
    )
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        # 0 would mean "no limit" to PostgreSQL: exactly the stall these bounds exist against
        if value < timedelta(milliseconds=1):
            raise ValueError("must be at least 1ms")
        return value

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not re.match(r"^(sqlite:///|postgres(ql)?(\+psycopg)?://)", value):
            raise ValueError(
                "expected sqlite:///path.sqlite or postgresql://user@host/db, "
                f"got {redact_url(value)!r}"
            )
        return value


class SourceParams(StrictModel):
    """Options every source accepts; a source type subclasses this for its own options."""

    type: str
    base_url: str | None = None
    timeout: Duration = timedelta(seconds=10)


class SymbolConfig(StrictModel):
    """One watched instrument: where its data comes from and when its market trades."""

    source: StrList = Field(min_length=1)
    ticker: str | None = None
    tickers: dict[str, str] = Field(default_factory=dict)  # per-source ticker overrides
    series: str | dict[str, str] | None = None  # FRED series id(s)
    file: str | None = None  # csv source
    name: str | None = None
    calendar: str = "always"
    poll: PollInterval | None = None  # override poll.every for this symbol

    def ticker_for(self, source_name: str, symbol_id: str) -> str:
        """The ticker to ask ``source_name`` for."""
        return self.tickers.get(source_name) or self.ticker or symbol_id


class PollConfig(StrictModel):
    """``poll:`` — how often and how long around sessions the bot polls."""

    every: PollInterval = timedelta(seconds=60)
    after_close: Duration = timedelta(minutes=20)
    settle: Duration = timedelta(minutes=10)
    concurrency: int = Field(default=4, ge=1, le=32)
    misfire_grace: Duration = timedelta(seconds=30)


class SanityConfig(StrictModel):
    """``sanity:`` — when an observation is not trusted."""

    max_jump: ThresholdValue = Threshold(10.0, percent=True)
    stale_after: Duration = timedelta(minutes=15)
    #: a jump beyond ``max_jump`` is accepted only once polls agreeing with each other have
    #: shown it for this long (two polls a minute apart are not enough: garbage repeats)
    confirm_after: Duration = timedelta(minutes=5)
    #: a value more than this factor above (or below) the last good close is never accepted,
    #: however often it repeats: an index does not triple (or lose two thirds) in a day
    max_ratio: float = Field(default=3.0, gt=1.0)
    #: observations stamped later than the clock's now plus this are rejected (and never
    #: become a rule's "newest seen")
    max_skew: Duration = timedelta(minutes=5)
    #: rates (FRED) outside this band, in percent, are implausible and rejected
    min_rate: float = -1.0
    max_rate: float = 25.0

    @model_validator(mode="after")
    def _rate_band(self) -> SanityConfig:
        if self.min_rate >= self.max_rate:
            raise ValueError(f"min_rate {self.min_rate:g} must be below max_rate {self.max_rate:g}")
        return self


class DeliveryConfig(StrictModel):
    """``delivery:`` — outbox draining."""

    # Network errors and 5xx are retried for about a day (300 tries, 5 minutes apart at most):
    # a Telegram outage must not turn queued alerts into failed ones.
    max_attempts: int = Field(default=300, ge=1)
    backoff: Duration = timedelta(seconds=2)
    max_backoff: Duration = timedelta(minutes=5)
    lease: Duration = timedelta(minutes=2)


class RuleParams(StrictModel):
    """Options every rule accepts. A rule type subclasses this and adds its own keys."""

    # Fields a user template may always use, in addition to the rule type's own.
    common_template_fields: ClassVar[frozenset[str]] = frozenset(
        {"rule", "symbol", "name", "value", "value_raw", "time", "message"}
    )

    id: str = Field(pattern=_ID_RE)
    type: str
    chats: StrList | None = None
    cooldown: Duration | None = None
    quiet_hours: QuietHoursValue | None = None
    enabled: StrictBool = True
    silent: StrictBool = False
    expires: DateValue | None = None
    template: str | None = None

    def watched_symbols(self) -> list[str]:
        """Symbol ids this rule reads; subclasses override."""
        symbol = getattr(self, "symbol", None)
        return [symbol] if isinstance(symbol, str) else []


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use e.g. America/New_York)") from None
    return value


class _TopLevel(StrictModel):
    """The top-level keys. Sections are validated one by one so one broken section does not
    hide the problems of the others."""

    timezone: Annotated[str, BeforeValidator(_check_zone)] = "America/New_York"
    telegram: TelegramConfig = TelegramConfig()
    state: StateConfig = StateConfig()
    sources: dict[str, Any] = Field(default_factory=dict)
    symbols: dict[str, Any] = Field(default_factory=dict)
    poll: PollConfig = PollConfig()
    sanity: SanityConfig = SanityConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    rules: list[Any] = Field(default_factory=list)


@dataclass(frozen=True)
class Config:
    """The whole validated config."""

    path: str
    timezone: str
    telegram: TelegramConfig
    state: StateConfig
    sources: dict[str, SourceParams]
    symbols: dict[str, SymbolConfig]
    poll: PollConfig
    sanity: SanityConfig
    delivery: DeliveryConfig
    rules: list[RuleParams]
    #: things that are valid but probably not meant (an ``expires`` in the past); ``check``
    #: prints them and ``run`` logs them
    warnings: tuple[ConfigProblem, ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def base_dir(self) -> Path:
        """Where relative paths resolve (csv ``file:``, ``sqlite:///`` state): the config
        file's directory; the working directory for the embedded default config."""
        return config_dir(self.path)

    def symbol_name(self, symbol_id: str) -> str:
        """Human name of a symbol (its ``name`` or, failing that, its id)."""
        spec = self.symbols.get(symbol_id)
        return (spec.name if spec and spec.name else None) or symbol_id


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def config_dir(file: str) -> Path:
    """The directory relative paths in the config at ``file`` resolve against."""
    return Path(file).resolve().parent


def redact_url(url: str) -> str:
    """Hide the password part of a database URL."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1<redacted>@", url)


def format_path(loc: tuple[str | int, ...]) -> str:
    """``("rules", 1, "level")`` → ``rules[1].level``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _pydantic_message(error: Mapping[str, Any], model: type[BaseModel] | None) -> str:
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
        return f"expected a number, got {_describe(given)}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"expected a whole number, got {_describe(given)}"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false, got {_describe(given)}"
    if kind in ("string_type",):
        return f"expected a text value, got {_describe(given)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping of keys, got {_describe(given)}"
    if kind in ("list_type",):
        return f"expected a list, got {_describe(given)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"expected one of {expected}; got {_describe(given)}"
    if kind == "string_pattern_mismatch":
        return f"{_describe(given)} may only contain letters, digits and _ . - ^ ="
    if kind in ("date_from_datetime_parsing", "date_parsing", "date_type"):
        return f"expected a date such as 2026-12-31, got {_describe(given)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"{error['msg'].lower()}, got {_describe(given)}"
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


class _Problems:
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
            self.add((*prefix, *loc), _pydantic_message(error, _model_at(model, loc) or model))


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

    problems = _Problems(file, loaded)
    data = loaded.data if loaded.data is not None else {}
    if not isinstance(data, dict):
        problems.add((), f"expected a mapping of sections at the top, got {_describe(data)}")
        raise ConfigError(problems.items)
    for duplicate in loaded.duplicates:
        problems.add(duplicate, "duplicate key (the same key appears twice in this mapping)")
    data = substitute_env(data, refs, environ, (), problems.unset)

    sections: dict[str, Any] = {}
    for key, value in data.items():
        if key.startswith("x-"):
            continue  # a place for YAML anchors (`x-defaults: &defaults …`), as in Compose files
        if key not in _TopLevel.model_fields:
            problems.add(
                (key,), _pydantic_message({"type": "extra_forbidden", "loc": (key,)}, _TopLevel)
            )
            continue
        if key in ("sources", "symbols", "rules"):
            expected = list if key == "rules" else dict
            if not isinstance(value, expected):
                kind = "a list of rules" if key == "rules" else "a mapping of names"
                problems.add((key,), f"expected {kind}, got {_describe(value)}")
                value = expected()
            sections[key] = value
            continue
        try:
            sections[key] = _TopLevel.model_validate({key: value}).__dict__[key]
        except ValidationError as exc:
            problems.add_validation((), exc, _TopLevel)
    top = _TopLevel.model_construct(
        **{k: v for k, v in _TopLevel().__dict__.items() if k not in sections}, **sections
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
    )


def _anchored_state(state: StateConfig, file: str) -> StateConfig:
    """``state`` with a relative ``sqlite:///`` path made absolute against the config file's
    directory (as a csv ``file:`` is), so the state does not move with the working directory."""
    url = state.url
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/") or url == prefix + ":memory:":
        return state
    return state.model_copy(update={"url": prefix + str(config_dir(file) / url[len(prefix) :])})


def _check_files(file: str, symbols: dict[str, SymbolConfig], problems: _Problems) -> None:
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
    loc: tuple[str | int, ...], body: Any, registry: Any, what: str, problems: _Problems
) -> tuple[Any, BaseModel] | None:
    """Validate one ``{type: …, …}`` entry with the params model of its registered type.

    Returns (the registered class, the validated params), or ``None`` after recording why not.
    """
    if not isinstance(body, dict):
        problems.add(loc, f"expected a mapping with a 'type' key, got {_describe(body)}")
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


def _validate_sources(raw: dict[str, Any], problems: _Problems) -> dict[str, SourceParams]:
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


def _validate_rules(raw: list[Any], problems: _Problems) -> list[tuple[int, RuleParams]]:
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
            from bot.context import TEMPLATE_FIELDS as CONTEXT_FIELDS  # facts of the symbol

            allowed = (
                RuleParams.common_template_fields | rule_class.template_fields | set(CONTEXT_FIELDS)
            )
            for message in template_problems(params.template, allowed):
                problems.add((*loc, "template"), message)
        result.append((index, params))
    return result


def _check_references(
    raw: _TopLevel,
    symbols: dict[str, SymbolConfig],
    sources: dict[str, SourceParams],
    rules: list[tuple[int, RuleParams]],
    problems: _Problems,
) -> None:
    from bot.calendars import CALENDARS

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
        for chat in params.chats or []:
            if chat not in chats:
                problems.add(
                    (*loc, "chats"),
                    f"unknown chat {chat!r}; named chats: {', '.join(chats) or 'none'}",
                )
