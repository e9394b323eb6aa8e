"""The engine: runs every rule over new observations and applies the options all rules share.

It is pure — no I/O, no wall clock — so the live loop (``bot.worker``) and historical replays
(``bot.backtest``) drive the very same code. Drivers own fetching, persisting and sending.
"""

from __future__ import annotations

import bisect
import logging
import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.config import Config, RuleParams
from bot.engine_states import EPOCH, healed, is_newer, peer_states, seen_times
from bot.model import Alert, AlertDraft, History, Observation, ObservationBatch
from bot.rules import RULES, Rule, RuleContext
from bot.rules.text import fmt_value, fmt_when
from bot.templates import MAX_ALERT_CHARS, TemplateError, bound, render

__all__ = ["MAX_ALERT_CHARS", "Engine", "EvaluationResult", "build_rules"]

log = logging.getLogger(__name__)

_by_time = operator.attrgetter("time")


@dataclass
class EvaluationResult:
    """New rule states (only those that changed) and the alerts to deliver, in time order."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)  # held back by cooldown
    muted: list[Alert] = field(default_factory=list)  # held back by a /mute (recorded, not sent)
    errors: dict[str, str] = field(default_factory=dict)  # rule id → what went wrong
    #: "SYMBOL/kind" → ISO time of the newest such observation evaluated (all rules share it)
    seen: dict[str, str] = field(default_factory=dict)


def build_rules(config: Config) -> list[Rule[Any]]:
    """Instantiate every configured rule through the registry."""
    context = _context(config)
    return [RULES.get(params.type)(params, context) for params in config.rules]


def _context(config: Config) -> RuleContext:
    return RuleContext(
        tz=config.tz,
        symbols=config.symbols,
        all_rules=config.rules,
        admin_chat=config.telegram.admin_chat,
    )


class Engine:
    """Evaluates rules. State per rule: ``{"rule": <the rule's own state>, "last_alert": iso}``;
    apart from it, one map for all rules (``EvaluationResult.seen``): "SYMBOL/kind" → the
    newest such observation evaluated. It changes every poll, so it is kept out of the rule
    states: a quiet cycle writes only the rules whose own state changed, plus that one map."""

    def __init__(
        self,
        rules: Sequence[Rule[Any]],
        context: RuleContext,
        max_skew: timedelta = timedelta(minutes=5),
    ) -> None:
        """``max_skew``: observations dated later than the clock's now plus this are never
        evaluated, so no rule state ever remembers a time in the future."""
        self.rules = list(rules)
        self.context = context
        self.max_skew = max_skew
        # rule ids whose template failed to render: logged once, then the default text is sent
        self._broken_templates: set[str] = set()
        # Per rule, once: asking a pydantic model for a field it lacks goes through its slow
        # __getattr__, which per alert was a tenth of a long backtest.
        self._attach_chart = {r.id: bool(getattr(r.params, "chart", False)) for r in self.rules}
        # Per rule, once: its chats as the tuple every alert carries (not a new one per alert).
        self._chats = {r.id: tuple(r.params.chats or ()) for r in self.rules}
        # (symbol, kind) → indexes of the enabled rules wanting it, filled on first sight
        # (Rule.wants decides on symbol and kind only, and rules never change once built)
        self._index: dict[tuple[str, str], tuple[int, ...]] = {}
        # rule id → whether its template uses market-context fields (computed only then)
        self._context_templates: dict[str, bool] = {}

    @classmethod
    def from_config(cls, config: Config) -> Engine:
        return cls(
            build_rules(config),
            _context(config),
            config.sanity.max_skew,
        )

    def evaluate(
        self,
        observations: Sequence[Observation],
        history: History,
        states: Mapping[str, Mapping[str, Any]],
        clock: Clock,
        skip: Collection[str] = (),
        mutes: Mapping[str, datetime] | None = None,
        seen: Mapping[str, str] | None = None,
    ) -> EvaluationResult:
        """Run every enabled rule over the observations it wants.

        ``states`` maps rule id → engine state from the previous call (missing: first run).
        A rule that raises is logged and keeps its previous state; other rules go on.
        Rules whose id is in ``skip`` (unseeded: their history is not loaded yet) evaluate
        nothing and keep their state untouched, as if they had seen no observation.
        ``mutes`` (rule id, or ``*`` for every rule → until when, from ``/mute``): a muted
        rule evaluates as usual, but its alerts are recorded in its state (``muted``: how many,
        the last one) and logged instead of being returned; they do not start a cooldown.
        ``seen`` is the previous call's ``result.seen`` (missing: taken from the per-rule
        "seen" maps states written before it existed still hold). ``result.states`` holds
        only the rules whose state changed.
        """
        result = EvaluationResult()
        ordered = sorted(observations, key=_by_time)
        now = clock.now()
        limit = now + self.max_skew
        live_mutes = {k: v for k, v in (mutes or {}).items() if v > now}
        if ordered and ordered[-1].time > limit:
            # Sanity rejects these first; this is the guard of the state itself: a time in the
            # future, once remembered as "newest seen", would hide every real observation.
            cut = bisect.bisect_right(ordered, limit, key=_by_time)
            for observation in ordered[cut:]:
                log.warning(
                    "skipped %s observation of %s dated %s: in the future",
                    observation.kind,
                    observation.symbol,
                    observation.time.isoformat(),
                )
            ordered = ordered[:cut]
        # Group once by (symbol, kind) — what Rule.wants() decides on — so 100 rules over a
        # 10,000-row backtest ask wants() a few times each instead of a million times.
        # Batches are ObservationBatch lists: rules sharing one can cache columns derived from
        # it (bot.rules.windows.batch_arrays) instead of each converting 10,000 rows again.
        groups: dict[tuple[str, str], ObservationBatch] = {}
        for observation in ordered:
            key: tuple[str, str] = (observation.symbol, observation.kind)
            group = groups.get(key)
            if group is None:
                group = groups[key] = ObservationBatch()
            group.append(observation)
        newest = seen_times(seen, states, limit)
        # Only the rules that want one of this batch's (symbol, kind) groups are visited: the
        # index maps each group to them, so a cycle costs what it touches, not rules × symbols.
        touched: dict[int, list[tuple[str, str]]] = {}
        for key, group in groups.items():
            for index in self._wanting(key, group[0]):
                touched.setdefault(index, []).append(key)
        selections: dict[tuple[tuple[str, str], ...], list[Observation]] = {}
        for index in sorted(touched):  # configuration order, as before
            rule = self.rules[index]
            params = rule.params
            rule_id = params.id
            if rule_id in skip:
                continue
            keys = tuple(touched[index])
            wanted = selections.get(keys)
            if wanted is None:
                if len(keys) == 1:
                    wanted = groups[keys[0]]
                else:
                    chosen = set(keys)
                    wanted = ObservationBatch(o for o in ordered if (o.symbol, o.kind) in chosen)
                # An observation no newer than the newest of its symbol and kind already
                # evaluated is a repeat (the same quote polled twice, a replica a moment
                # behind): skip it, so the outcome does not depend on how often or by whom
                # markets are polled. Checked first: in a replay the whole batch is newer.
                if newest and wanted and wanted[0].time <= max(newest.get(k, EPOCH) for k in keys):
                    wanted = ObservationBatch(o for o in wanted if is_newer(o, newest))
                selections[keys] = wanted
            if params.expires is not None:
                wanted = [o for o in wanted if not self._expired(params, o)]
            if not wanted:
                continue
            previous = healed(rule_id, states.get(rule_id) or {}, limit)
            peer_ids = rule.peer_rules()
            if peer_ids:  # from ``states``: as of the start of the call, whatever ran first
                rule.peers = peer_states(states, peer_ids)
            try:
                rule_state, drafts = rule.evaluate(wanted, history, previous.get("rule"), clock)
            except Exception as exc:  # a broken rule must not stop the others
                log.exception("rule %s failed on %d observations", rule_id, len(wanted))
                result.errors[rule_id] = f"{type(exc).__name__}: {exc}"
                continue
            last_alert = previous.get("last_alert")
            sent: datetime | None = None  # the newest alert of this call (ISO only when stored)
            muted_until = (
                max((live_mutes[k] for k in (rule_id, "*") if k in live_mutes), default=None)
                if live_mutes
                else None
            )
            muted = previous.get("muted")
            for draft in drafts:
                alert = self._alert(rule, draft, history)
                if muted_until is not None:
                    log.info(
                        "rule %s: alert %s muted until %s (recorded, not sent): %s",
                        rule_id,
                        alert.id,
                        muted_until.isoformat(),
                        alert.text,
                    )
                    result.muted.append(alert)
                    muted = {
                        "count": int((muted or {}).get("count") or 0) + 1,
                        "last": {
                            "id": alert.id,
                            "time": alert.time.isoformat(),
                            "text": alert.text,
                        },
                    }
                    continue
                if params.cooldown is not None and self._cooling_down(
                    params.cooldown, sent, last_alert, draft.time
                ):
                    log.info("rule %s: alert %s held back by cooldown", rule_id, alert.id)
                    result.suppressed.append(alert)
                    continue
                sent = draft.time
                result.alerts.append(alert)
            if sent is not None:
                last_alert = sent.isoformat()
            state = {"rule": rule_state, "last_alert": last_alert}
            if muted:
                state["muted"] = muted
            if state != previous:  # only what really changed is written back
                result.states[rule_id] = state
        for key, group in groups.items():
            if newest.get(key, EPOCH) < group[-1].time:
                newest[key] = group[-1].time
        result.seen = {f"{k[0]}/{k[1]}": moment.isoformat() for k, moment in newest.items()}
        result.alerts.sort(key=_by_time)
        return result

    def _wanting(self, key: tuple[str, str], probe: Observation) -> tuple[int, ...]:
        """Indexes of the enabled rules that want observations of ``key`` (cached)."""
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = tuple(
                i for i, rule in enumerate(self.rules) if rule.params.enabled and rule.wants(probe)
            )
        return found

    def _expired(self, params: RuleParams, observation: Observation) -> bool:
        if params.expires is None:
            return False
        # a date-only row (FRED) counts on its own date, not on the UTC midnight's local date
        day = (
            observation.session
            if observation.date_only and observation.session is not None
            else observation.time.astimezone(self.context.tz).date()
        )
        return day > params.expires

    @staticmethod
    def _cooling_down(
        cooldown: timedelta, sent: datetime | None, last_alert: str | None, moment: datetime
    ) -> bool:
        """Whether ``moment`` is within ``cooldown`` of the rule's last alert: ``sent`` (this
        call's), else ``last_alert`` (the stored one, ISO)."""
        if sent is None:
            if last_alert is None:
                return False
            sent = datetime.fromisoformat(last_alert)
        return moment - sent < cooldown

    def _uses_context(self, params: RuleParams) -> bool:
        """Whether the rule's template names a market-context field (``{drought_rank}``…)."""
        found = self._context_templates.get(params.id)
        if found is None:
            import string

            from bot.context import TEMPLATE_FIELDS

            try:
                names = {f for _, f, _, _ in string.Formatter().parse(params.template or "") if f}
            except ValueError:
                names = set()
            found = self._context_templates[params.id] = bool(names & set(TEMPLATE_FIELDS))
        return found

    def _context_fields(self, draft: AlertDraft, history: History) -> dict[str, str]:
        """The facts of the alert's symbol (bot.context) as of the alert: through the close of
        its day once that session has closed by the alert's time, else through the day before
        (an intraday alert never reads its own day's close: no look-ahead in backtests)."""
        from bot.calendars import get_calendar
        from bot.context import template_fields_for

        if draft.day is not None:
            cutoff = draft.day
        else:
            spec = self.context.symbols.get(draft.symbol)
            calendar = get_calendar(spec.calendar if spec is not None else "always")
            cutoff = draft.time.astimezone(calendar.tz).date()
            session = calendar.session_on(cutoff)
            if session is None or session.close > draft.time:
                cutoff -= timedelta(days=1)
        return template_fields_for(history.get(draft.symbol), cutoff)

    def _alert(self, rule: Rule[Any], draft: AlertDraft, history: History | None = None) -> Alert:
        params = rule.params
        text = draft.text
        if params.template is not None:
            context_fields = (
                self._context_fields(draft, history)
                if history is not None and self._uses_context(params)
                else {}
            )
            fields = {
                **context_fields,
                "rule": params.id,
                "symbol": draft.symbol,
                "name": self.context.name(draft.symbol),
                "value": fmt_value(draft.value),
                "value_raw": draft.value,
                "time": fmt_when(draft.time, self.context.tz, draft.day),
                "message": draft.text,
                **draft.fields,
            }
            # Templates were rendered with sample values when the config was loaded; one that
            # still fails here (a field of a surprising type) costs only its own wording: the
            # alert goes out with the default text, and the cycle's other alerts are unaffected.
            try:
                text = render(params.template, fields)
            except TemplateError as exc:
                if params.id not in self._broken_templates:
                    self._broken_templates.add(params.id)
                    log.warning(
                        "rule %s: its template cannot be rendered (%s); sending the default "
                        "text instead",
                        params.id,
                        exc,
                    )
        if len(text) > MAX_ALERT_CHARS:
            text = bound(text)  # a rendered alert never exceeds MAX_ALERT_CHARS
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
            chats=(self.context.admin_chat,)
            if draft.to_admin and self.context.admin_chat
            else self._chats.get(params.id) or tuple(params.chats or ()),
            day=draft.day,
            chart=self._attach_chart.get(params.id, False),
        )
