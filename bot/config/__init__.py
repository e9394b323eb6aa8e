"""The config: value types, the pydantic model, ``${VAR}`` substitution, problems, the loader.

One module each — :mod:`~bot.config.values` (durations, thresholds, quiet hours, chat ids),
:mod:`~bot.config.model` (the sections and :class:`Config`), :mod:`~bot.config.env`
(``${VAR}``), :mod:`~bot.config.problems` (``FILE:LINE: key.path: message``) and
:mod:`~bot.config.load` (read, validate through the registries, :func:`read_config`). Import
public names from here (``from bot.config import RuleParams``); the submodules are the layout.
"""

from bot.config.load import (
    DEFAULT_CONFIG,
    EMBEDDED_CONFIG,
    config_path,
    load_config,
    parse_config,
    read_config,
)
from bot.config.model import (
    Config,
    DeliveryConfig,
    PollConfig,
    RuleParams,
    SanityConfig,
    SourceParams,
    StateConfig,
    StrictModel,
    SymbolConfig,
    TelegramConfig,
    TopLevel,
    config_dir,
)
from bot.config.problems import format_path
from bot.config.values import (
    MIN_POLL,
    ChatId,
    ClockTime,
    DateValue,
    Duration,
    PollInterval,
    QuietHours,
    QuietHoursValue,
    StrList,
    Threshold,
    ThresholdValue,
    format_duration,
    parse_chat_id,
    parse_clock_time,
    parse_date,
    parse_duration,
    parse_poll_interval,
    parse_quiet_hours,
    parse_threshold,
    redact_url,
)
from bot.errors import ConfigError, ConfigProblem

__all__ = [
    "DEFAULT_CONFIG",
    "EMBEDDED_CONFIG",
    "MIN_POLL",
    "ChatId",
    "ClockTime",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DateValue",
    "DeliveryConfig",
    "Duration",
    "PollConfig",
    "PollInterval",
    "QuietHours",
    "QuietHoursValue",
    "RuleParams",
    "SanityConfig",
    "SourceParams",
    "StateConfig",
    "StrList",
    "StrictModel",
    "SymbolConfig",
    "TelegramConfig",
    "Threshold",
    "ThresholdValue",
    "TopLevel",
    "config_dir",
    "config_path",
    "format_duration",
    "format_path",
    "load_config",
    "parse_chat_id",
    "parse_clock_time",
    "parse_config",
    "parse_date",
    "parse_duration",
    "parse_poll_interval",
    "parse_quiet_hours",
    "parse_threshold",
    "read_config",
    "redact_url",
]
