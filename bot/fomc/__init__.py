"""The Fed's FOMC decisions: the statement parser, the meeting calendar and futures-implied odds.

Pure code (no I/O): the ``fomc`` source (:mod:`bot.sources.fomc`) and the rules call it.
"""
