"""The rule contract: a pure function of (observations, history, state, clock) → alerts.

A rule may also read the states of other rules its params name
(:meth:`~bot.config.RuleParams.watched_rules`): the engine sets :attr:`Rule.peers` to them,
read-only and as of the start of the evaluation, before each ``evaluate``.

A rule type is one module in ``bot/rules/`` that subclasses :class:`Rule`, declares its
``params_model`` (a :class:`~bot.config.RuleParams` subclass) and registers itself with
``@RULES.register("name")``. The engine (``bot.engine``) applies the options every rule shares
(enabled, expires, cooldown, quiet_hours, silent, template, chats); a rule only decides *what*
happened.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.config import RuleParams, SymbolConfig
from bot.model import AlertDraft, History, Observation
from bot.registry import Registry

P = TypeVar("P", bound=RuleParams)

RuleState = dict[str, Any]

#: Rule id → that rule's own state (what its ``evaluate`` returned), read-only.
PeerStates = Mapping[str, Mapping[str, Any]]

_NO_PEERS: PeerStates = MappingProxyType({})


@dataclass(frozen=True)
class RuleContext:
    """Static facts a rule may use to word its messages and find related config."""

    tz: ZoneInfo
    symbols: Mapping[str, SymbolConfig] = field(default_factory=dict)
    all_rules: Sequence[RuleParams] = ()
    admin_chat: str | None = None  # where ``AlertDraft.to_admin`` drafts go

    def name(self, symbol_id: str) -> str:
        spec = self.symbols.get(symbol_id)
        return (spec.name if spec is not None and spec.name else None) or symbol_id


class Rule(ABC, Generic[P]):
    """Base class of every rule type."""

    type_name: ClassVar[str] = ""
    params_model: ClassVar[type[RuleParams]] = RuleParams
    #: names a user ``template`` may use in addition to RuleParams.common_template_fields
    template_fields: ClassVar[frozenset[str]] = frozenset()
    #: observation kinds the rule wants to see (see bot.model.Observation)
    observation_kinds: ClassVar[frozenset[str]] = frozenset({"price", "close"})

    def __init__(self, params: P, context: RuleContext) -> None:
        self.params = params
        self.context = context
        # ``on: close`` (cross, near, change): final daily closes only, never intraday prints.
        on = getattr(params, "on", None)
        self._kinds = frozenset({"close"}) if on == "close" else self.observation_kinds
        self._watched = frozenset(self.symbols())
        #: the states of the rules named by :meth:`peer_rules`, as of the start of the current
        #: evaluation (set by the engine before each ``evaluate``; empty until then)
        self.peers: PeerStates = _NO_PEERS
        self._peer_ids = tuple(dict.fromkeys(r for _, r, _ in params.watched_rules()))

    @property
    def id(self) -> str:
        return self.params.id

    def symbols(self) -> list[str]:
        """Symbol ids whose observations this rule reads."""
        return self.params.watched_symbols()

    def peer_rules(self) -> Sequence[str]:
        """Ids of other rules whose states this rule reads through :attr:`peers` (e.g. the
        digest quoting a ``rate_odds`` rule's odds).

        The engine hands them over read-only, as they were when the evaluation began (a
        poll cycle; a backtest's one pass), so the outcome never depends on the order in
        which rules run within it. A rule must not mutate them. Default: those its params
        name (:meth:`~bot.config.RuleParams.watched_rules`).
        """
        return self._peer_ids

    def history_days(self) -> int | None:
        """Days of daily history the rule needs before its first live observation.

        0: none; ``None``: all available (e.g. the all-time record).
        """
        return 0

    def reconcile(self, state: Mapping[str, Any] | None, history: History) -> RuleState | None:
        """The rule's state made consistent with newly loaded ``history`` (called once its
        history arrives, e.g. after a failed load at start). Default: unchanged (``state``).

        A rule whose state summarises history (a record) folds in rows it could not have
        known; it must never fire from here, and must not mutate ``state``.
        """
        return dict(state) if state is not None else None

    def scheduled_times(self, start: date, end: date) -> list[datetime]:
        """Moments (UTC) between the dates at which a scheduled rule (``digest``) is due.

        The backtest emits a ``tick`` observation at each, as the live worker does every poll
        cycle. Rules that react to data only keep the default: none.
        """
        return []

    def wants(self, observation: Observation) -> bool:
        """Whether ``observation`` is input to this rule.

        Decided by the observation's ``symbol`` and ``kind`` only: the engine asks once per
        (symbol, kind) group of a batch, not once per observation.
        """
        if observation.kind not in self._kinds:
            return False
        return observation.kind == "tick" or observation.symbol in self._watched

    @abstractmethod
    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        state: Mapping[str, Any] | None,
        clock: Clock,
    ) -> tuple[RuleState, list[AlertDraft]]:
        """Evaluate new ``observations`` (time-ordered, all wanted by this rule).

        ``state`` is what the previous call returned (``None`` the very first time: seed it from
        ``history`` so a first run never fires just because no state existed). ``history`` holds
        every final daily close up to and including those in ``observations``; look only at rows
        dated before the observation being evaluated (no look-ahead: the same code replays
        history in backtests). Must not do I/O or read the wall clock; must not mutate ``state``.
        Returns the new JSON-serialisable state and the alerts, in time order.
        """


RULES: Registry[Rule[Any]] = Registry("rule type", package="bot.rules")
