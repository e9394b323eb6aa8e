"""The engine: runs every rule over new observations and applies the options all rules share.

It is pure — no I/O, no wall clock — so the live loop (``bot.worker``) and historical replays
(``bot.backtest``) drive the very same code. Drivers own fetching, persisting and sending.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.config import Config, RuleParams
from bot.model import Alert, AlertDraft, History, Observation, ObservationBatch
from bot.rules import RULES, Rule, RuleContext

log = logging.getLogger(__name__)

_by_time = operator.attrgetter("time")


@dataclass
class EvaluationResult:
    """New rule states (only those that changed) and the alerts to deliver, in time order."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)  # held back by cooldown
    errors: dict[str, str] = field(default_factory=dict)  # rule id → what went wrong


def build_rules(config: Config) -> list[Rule[Any]]:
    """Instantiate every configured rule through the registry."""
    context = RuleContext(tz=config.tz, symbols=config.symbols, all_rules=config.rules)
    return [RULES.get(params.type)(params, context) for params in config.rules]


class Engine:
    """Evaluates rules. State per rule: ``{"rule": <the rule's own state>, "last_alert": iso,
    "seen": {"SYMBOL/kind": iso time of the newest such observation processed}}``."""

    def __init__(self, rules: Sequence[Rule[Any]], context: RuleContext) -> None:
        self.rules = list(rules)
        self.context = context

    @classmethod
    def from_config(cls, config: Config) -> Engine:
        return cls(
            build_rules(config),
            RuleContext(tz=config.tz, symbols=config.symbols, all_rules=config.rules),
        )

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        states: Mapping[str, Mapping[str, Any]],
        clock: Clock,
        skip: Collection[str] = (),
    ) -> EvaluationResult:
        """Run every enabled rule over the observations it wants.

        ``states`` maps rule id → engine state from the previous call (missing: first run).
        A rule that raises is logged and keeps its previous state; other rules go on.
        Rules whose id is in ``skip`` (unseeded: their history is not loaded yet) evaluate
        nothing and keep their state untouched, as if they had seen no observation.
        """
        result = EvaluationResult()
        ordered = sorted(observations, key=_by_time)
        # Group once by (symbol, kind) — what Rule.wants() decides on — so 100 rules over a
        # 10,000-row backtest ask wants() a few times each instead of a million times.
        # Batches are ObservationBatch lists: rules sharing one can cache columns derived from
        # it (bot.rules.windows.batch_arrays) instead of each converting 10,000 rows again.
        groups: dict[tuple[str, str], ObservationBatch] = {}
        for observation in ordered:
            key = (observation.symbol, observation.kind)
            group = groups.get(key)
            if group is None:
                group = groups[key] = ObservationBatch()
            group.append(observation)
        selections: dict[frozenset[tuple[str, str]], list[Observation]] = {}
        for rule in self.rules:
            params = rule.params
            if not params.enabled or rule.id in skip:
                continue
            keys = frozenset(key for key, group in groups.items() if rule.wants(group[0]))
            wanted = selections.get(keys)
            if wanted is None:
                if len(keys) == 1:
                    wanted = groups[next(iter(keys))]
                else:
                    wanted = ObservationBatch(o for o in ordered if (o.symbol, o.kind) in keys)
                selections[keys] = wanted
            if params.expires is not None:
                wanted = [o for o in wanted if not self._expired(params, o.time)]
            previous = states.get(rule.id) or {}
            # An observation no newer than the last one of its symbol and kind this rule
            # processed is a repeat (the same quote polled twice, a replica a moment behind):
            # skip it, so the outcome does not depend on how often or by whom markets are polled.
            seen = {
                key: datetime.fromisoformat(value)
                for key, value in (previous.get("seen") or {}).items()
            }
            if seen and wanted and wanted[0].time <= max(seen.values()):
                # (checked first: in a replay the whole batch is newer, nothing to filter)
                wanted = [o for o in wanted if _newer(o, seen)]
            if not wanted:
                continue
            try:
                rule_state, drafts = rule.evaluate(wanted, history, previous.get("rule"), clock)
            except Exception as exc:  # a broken rule must not stop the others
                log.exception("rule %s failed on %d observations", rule.id, len(wanted))
                result.errors[rule.id] = f"{type(exc).__name__}: {exc}"
                continue
            last_alert = previous.get("last_alert")
            for draft in drafts:
                alert = self._alert(rule, draft)
                if self._cooling_down(params, last_alert, draft.time):
                    log.info("rule %s: alert %s held back by cooldown", rule.id, alert.id)
                    result.suppressed.append(alert)
                    continue
                last_alert = draft.time.isoformat()
                result.alerts.append(alert)
            _remember_newest(wanted, keys, seen)
            result.states[rule.id] = {
                "rule": rule_state,
                "last_alert": last_alert,
                "seen": {key: moment.isoformat() for key, moment in seen.items()},
            }
        result.alerts.sort(key=_by_time)
        return result

    def _expired(self, params: RuleParams, moment: datetime) -> bool:
        return params.expires is not None and moment.astimezone(self.context.tz).date() > (
            params.expires
        )

    @staticmethod
    def _cooling_down(params: RuleParams, last_alert: str | None, moment: datetime) -> bool:
        if params.cooldown is None or last_alert is None:
            return False
        return moment - datetime.fromisoformat(last_alert) < params.cooldown

    def _alert(self, rule: Rule[Any], draft: AlertDraft) -> Alert:
        params = rule.params
        text = draft.text
        if params.template is not None:
            fields = {
                "rule": params.id,
                "symbol": draft.symbol,
                "name": self.context.name(draft.symbol),
                "value": draft.value,
                "time": draft.time.astimezone(self.context.tz).strftime("%Y-%m-%d %H:%M %Z"),
                "message": draft.text,
                **draft.fields,
            }
            # Fields were checked against the rule type's list when the config was loaded.
            text = params.template.format_map(fields)
        quiet = params.quiet_hours is not None and params.quiet_hours.contains(
            draft.time.astimezone(self.context.tz).time()
        )
        return Alert(
            id=f"{params.id}:{draft.key}",
            rule_id=params.id,
            rule_type=rule.type_name,
            symbol=draft.symbol,
            time=draft.time,
            value=draft.value,
            text=text,
            silent=params.silent or quiet,
            chats=tuple(params.chats or ()),
        )


def _newer(observation: Observation, seen: Mapping[str, datetime]) -> bool:
    """Whether ``observation`` is newer than the last one of its symbol and kind processed."""
    last = seen.get(f"{observation.symbol}/{observation.kind}")
    return last is None or observation.time > last


def _remember_newest(
    wanted: Sequence[Observation], keys: frozenset[tuple[str, str]], seen: dict[str, datetime]
) -> None:
    """Record the newest time per symbol and kind of ``wanted`` (time-ordered) in ``seen``."""
    missing = set(keys)
    for observation in reversed(wanted):  # a few steps: each key's newest is near the end
        key = (observation.symbol, observation.kind)
        if key in missing:
            seen[f"{key[0]}/{key[1]}"] = observation.time
            missing.discard(key)
            if not missing:
                break
