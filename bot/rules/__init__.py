"""Rule types, one module each, registered by the name users write as ``type:``."""

from bot.registry import import_plugins
from bot.rules.base import RULES, Rule, RuleContext, RuleState

import_plugins(__name__, __path__)

__all__ = ["RULES", "Rule", "RuleContext", "RuleState"]
