"""Rule types, one module each, registered by the name users write as ``type:``
(imported by the registry at its first lookup)."""

from bot.rules.base import RULES, Rule, RuleContext, RuleState

__all__ = ["RULES", "Rule", "RuleContext", "RuleState"]
