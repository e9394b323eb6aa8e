"""Market calendars (placeholder until the calendar module lands)."""

CALENDARS = ("always", "XNYS", "CME")
