"""A session's device in words ("Chrome 156 on Linux") from its User-Agent header.

The parser is ua-parser (its kept regexes, the ones browsers' vendors' strings are tested
against). It is imported on the first call, never on a request's hot path (only where sessions are
listed), and each string is parsed once per process: the first parse compiles the regexes (~0.1 s),
a later one costs a millisecond, a cached one nothing.
"""

from __future__ import annotations

from functools import lru_cache

# The operating systems whose ua-parser names read oddly, and whose version says little.
_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}
_UNVERSIONED_OS = {"Mac OS X", "Linux", "Ubuntu", "Fedora", "Chrome OS", "Debian"}
MAX_USER_AGENT_CHARS = 512  # what the store keeps of a header


def describe_device(user_agent: str | None) -> str | None:
    """ "Chrome 156 on Linux", "Mobile Safari 17 on iOS 17", "curl 8"; ``None`` for no header or
    one the parser does not recognise (the raw string is still there for whoever needs it)."""
    if not user_agent or not user_agent.strip():
        return None
    return _describe(user_agent[:MAX_USER_AGENT_CHARS])


@lru_cache(maxsize=2048)
def _describe(user_agent: str) -> str | None:
    from ua_parser import parse  # deferred: ~0.1 s of regex compilation, only when needed

    result = parse(user_agent)
    agent, system = result.user_agent, result.os
    if agent is None or agent.family == "Other":
        return None
    browser = f"{agent.family} {agent.major}" if agent.major else agent.family
    if system is None or system.family == "Other":
        return browser
    name = _OS_NAMES.get(system.family, system.family)
    if system.major and system.family not in _UNVERSIONED_OS:
        name = f"{name} {system.major}"
    return f"{browser} on {name}"
