"""The validated config model: one pydantic model per section, and :class:`Config`.

Every section subclasses :class:`StrictModel` (unknown keys are errors, booleans are strict).
A source or rule type subclasses :class:`SourceParams` / :class:`RuleParams` for its own keys;
the loader (:mod:`bot.config.load`) picks the subclass through the registries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.config.values import (
    ChatId,
    DateValue,
    Duration,
    PollInterval,
    QuietHoursValue,
    StrList,
    Threshold,
    ThresholdValue,
    describe,
    redact_url,
)
from bot.errors import ConfigProblem

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
            raise ValueError(f"expected true or false, got {describe(value)}")
        if kinds and bool not in kinds and isinstance(value, bool):
            number = "a number" if float in kinds else "a whole number"
            raise ValueError(f"expected {number}, got {describe(value)}")
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
    # The cockpit (issue 10): commands and buttons, answered in ``chats`` only.
    #: user ids allowed to change state (/mute, /unmute, buttons); empty: anyone in ``chats``
    admins: list[StrictInt] = Field(default_factory=list)
    #: answer commands (long polling); off: the bot only pushes alerts
    commands: StrictBool = True
    #: inline buttons (Chart, Mute 1h, Mute today) under every alert
    buttons: StrictBool = True
    #: replicas take turns polling Telegram's updates; a dead holder's turn ends after this
    poll_lease: Duration = timedelta(seconds=30)

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
    #: sent and failed outbox rows older than this are deleted (pending rows never are)
    retention: Duration = timedelta(days=30)


class MonitorConfig(StrictModel):
    """``monitor:`` — the bot watching itself: alerts to the admin chat when a feed is down."""

    #: consecutive failed polls of a symbol (while its market is open) before "data feed down"
    feed_down_after: int = Field(default=5, ge=1)
    #: consecutive failed history loads of a symbol (its rules waiting) before "history down"
    history_down_after: int = Field(default=3, ge=1)


class HeartbeatConfig(StrictModel):
    """``heartbeat:`` — a URL pinged (GET) after each healthy cycle (a dead-man's switch)."""

    url: str | None = Field(default=None, pattern=r"^https?://")
    #: total time one ping may take; a slow one is abandoned, never waited for by a cycle
    timeout: Duration = timedelta(seconds=5)


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

    def watched_rules(self) -> list[tuple[str, str, str | None]]:
        """Other rules whose states this rule reads, as ``(option key, rule id, required rule
        type or None)``: checked against the config, handed over by the engine (``Rule.peers``).
        Default: none; subclasses override."""
        return []


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use e.g. America/New_York)") from None
    return value


class TopLevel(StrictModel):
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
    monitor: MonitorConfig = MonitorConfig()
    heartbeat: HeartbeatConfig = HeartbeatConfig()


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
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)

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


def config_dir(file: str) -> Path:
    """The directory relative paths in the config at ``file`` resolve against."""
    return Path(file).resolve().parent
