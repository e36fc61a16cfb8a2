"""Origins, sites and the one origin allowlist.

An origin is exactly ``scheme://host[:port]``. Configured origins are parsed strictly and compared
by exact canonical value, never by prefix, suffix or regular expression: a regex such as
``https://.*\\.example\\.com`` also matches ``https://example.com.evil.test``. Hosts are ASCII
(internationalised names in their ``xn--`` form), lowercase, and default ports are dropped, so
``HTTPS://App.Example.com:443`` and ``https://app.example.com`` are the same origin.

A *site* is the scheme plus the registrable domain (eTLD+1, from the Public Suffix List bundled
with ``publicsuffixlist``; no network access). Two origins are same-site when their sites are
equal; that decides whether cookies need ``SameSite=None``.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import string
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

__all__ = [
    "CookiePolicy",
    "Lookalike",
    "LookalikeKind",
    "Origin",
    "OriginAllowlist",
    "RefusedOrigin",
    "classify_lookalike",
    "derive_cookie_policy",
    "explain_refused_origin",
    "is_same_site",
    "origin_of_url",
    "parse_origin",
    "site_of",
]

DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}

_EXPECTED = "expected scheme://host[:port], for example https://app.example.com"
_WILDCARD_MESSAGE = (
    "a wildcard cannot be used with credentials: list each allowed origin exactly, "
    "for example https://app.example.com"
)
_REGEX_CHARACTERS = frozenset("*^$()[]{}|+?\\")
_LABEL_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-_")
_HEX_DIGITS = frozenset(string.hexdigits)
_MAX_HOST_LENGTH = 253
_MAX_LABEL_LENGTH = 63


class Origin(NamedTuple):
    """A canonical origin; build it with :func:`parse_origin` or :func:`origin_of_url`.

    ``host`` is lowercase ASCII; an IPv6 address is stored without brackets. ``port`` is ``None``
    when it is the default port of the scheme.
    """

    scheme: str
    host: str
    port: int | None

    def serialize(self) -> str:
        """The canonical text form, ``scheme://host[:port]``, as browsers send it in ``Origin``."""
        return f"{self.scheme.lower()}://{self.netloc}"

    @property
    def netloc(self) -> str:
        """``host[:port]`` of the canonical form (IPv6 in brackets, no default port): the
        ``Host`` header browsers send to this origin."""
        host = self.host.lower()
        if ":" in host:
            host = f"[{host}]"
        if self.port is None or self.port == DEFAULT_PORTS.get(self.scheme.lower()):
            return host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.serialize()


def parse_origin(value: str) -> Origin:
    """Parse a configured or received origin strictly; raise ``ValueError`` explaining the form.

    Accepted: exactly ``http://`` or ``https://``, a host name, IPv4 address or bracketed IPv6
    address, and an optional port. Refused: paths (even a single trailing ``/``), queries,
    fragments, user info, wildcards, regular-expression characters, percent-encoding,
    whitespace and non-ASCII text.
    """
    if not isinstance(value, str):
        raise TypeError(f"An origin must be a string, not {type(value).__name__}.")
    shown = _shorten(value)
    if value == "":
        raise ValueError(f"An origin cannot be empty; {_EXPECTED}.")
    if value.strip() == "*":
        raise ValueError(f"'*' is not an origin: {_WILDCARD_MESSAGE}.")
    if value == "null":
        raise ValueError(
            "'null' cannot be allowed: it is what sandboxed frames and file:// pages send, "
            f"so anyone can produce it; {_EXPECTED}."
        )
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError(f"Origin {shown} contains whitespace or control characters; {_EXPECTED}.")
    if not value.isascii():
        raise ValueError(
            f"Origin {shown} contains non-ASCII characters; write internationalised host names "
            f"in their xn-- (punycode) form; {_EXPECTED}."
        )
    scheme, separator, rest = value.partition("://")
    if not separator:
        raise ValueError(f"Origin {shown} has no scheme; {_EXPECTED}.")
    scheme = scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(
            f"Origin {shown} must start with http:// or https:// (got {_shorten(scheme)}://)."
        )
    if "*" in rest:
        raise ValueError(f"Origin {shown} contains '*': {_WILDCARD_MESSAGE}.")
    if rest.endswith("/") and rest.count("/") == 1:
        raise ValueError(
            f"Origin {shown} ends with '/'; an origin has no path, not even '/'. "
            f"Write it as {scheme}://{rest[:-1]}."
        )
    if "/" in rest:
        raise ValueError(f"Origin {shown} contains a path; an origin has none; {_EXPECTED}.")
    if "?" in rest or "#" in rest:
        raise ValueError(
            f"Origin {shown} contains a query or fragment; an origin has neither; {_EXPECTED}."
        )
    if "@" in rest:
        raise ValueError(
            f"Origin {shown} contains user info ('@'); an origin is only scheme, host and port; "
            f"{_EXPECTED}."
        )
    if "%" in rest:
        raise ValueError(
            f"Origin {shown} contains percent-encoding; write the host as plain text; {_EXPECTED}."
        )

    if rest.startswith("["):
        host, port = _split_ipv6(rest, shown)
    else:
        if any(ch in _REGEX_CHARACTERS for ch in rest):
            raise ValueError(
                f"Origin {shown} looks like a regular expression; origins are compared exactly, "
                f"so list each one as scheme://host[:port]."
            )
        if rest.count(":") > 1:
            raise ValueError(
                f"Origin {shown} has more than one ':'; write IPv6 addresses in brackets, "
                "for example http://[::1]:8080."
            )
        host_text, colon, port_text = rest.partition(":")
        host = _parse_host(host_text.lower(), shown)
        port = _parse_port(port_text, shown) if colon else None

    if port == DEFAULT_PORTS[scheme]:
        port = None
    return Origin(scheme, host, port)


def _split_ipv6(rest: str, shown: str) -> tuple[str, int | None]:
    inner, bracket, after = rest[1:].partition("]")
    if not bracket:
        raise ValueError(f"Origin {shown} opens '[' but never closes it; {_EXPECTED}.")
    try:
        address = ipaddress.IPv6Address(inner)
    except ValueError:
        raise ValueError(f"Origin {shown} has an invalid IPv6 address in brackets.") from None
    if after == "":
        return address.compressed, None
    if not after.startswith(":"):
        raise ValueError(f"Origin {shown} has unexpected text after ']'; {_EXPECTED}.")
    return address.compressed, _parse_port(after[1:], shown)


def _parse_host(host: str, shown: str) -> str:
    if host == "":
        raise ValueError(f"Origin {shown} has no host; {_EXPECTED}.")
    if len(host) > _MAX_HOST_LENGTH:
        raise ValueError(f"Origin {shown} has a host longer than {_MAX_HOST_LENGTH} characters.")
    labels = host.split(".")
    for label in labels:
        if label == "":
            raise ValueError(
                f"Origin {shown} has an empty label in its host (a leading, trailing or "
                "doubled '.'); write the host without it."
            )
        if len(label) > _MAX_LABEL_LENGTH:
            raise ValueError(
                f"Origin {shown} has a host label longer than {_MAX_LABEL_LENGTH} characters."
            )
        if not set(label) <= _LABEL_CHARACTERS:
            raise ValueError(
                f"Origin {shown} has characters not allowed in a host name "
                "(use letters, digits, '-' and '.')."
            )
        if label.startswith("-") or label.endswith("-"):
            raise ValueError(f"Origin {shown} has a host label starting or ending with '-'.")
    last = labels[-1]
    if last.isdigit():
        # Browsers read a host whose last label is a number as an IPv4 address; accept only
        # the plain dotted-quad form so every allowed origin has one spelling.
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise ValueError(
                f"Origin {shown} has a numeric host that is not a dotted IPv4 address "
                "such as 127.0.0.1."
            ) from None
    if last.startswith("0x") and set(last[2:]) <= _HEX_DIGITS:
        raise ValueError(
            f"Origin {shown} has a hexadecimal host; write IPv4 addresses as dotted decimals."
        )
    return host


def _parse_port(text: str, shown: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 5:
        raise ValueError(f"Origin {shown} has an invalid port; use a number from 1 to 65535.")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"Origin {shown} has port {port}; use a number from 1 to 65535.")
    return port


def _shorten(value: str, limit: int = 80) -> str:
    text = value if len(value) <= limit else value[: limit - 3] + "..."
    return repr(text)


def origin_of_url(url: str) -> Origin | None:
    """The origin of a full ``http(s)`` URL such as a ``Referer``; ``None`` if there is none.

    URLs with user info are refused (browsers strip it from ``Referer``), as is anything that
    does not parse as an absolute ``http(s)`` URL.
    """
    if not isinstance(url, str) or not url or not url.isascii():
        return None
    if any(ch.isspace() or not ch.isprintable() or ch == "\\" for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.netloc or "@" in parts.netloc:
        return None
    if not url.lower().startswith(f"{parts.scheme.lower()}://"):
        return None
    try:
        return parse_origin(f"{parts.scheme}://{parts.netloc}")
    except ValueError:
        return None


@functools.cache
def _public_suffix_list() -> PublicSuffixList:
    # The bundled list: parsed once, never fetched over the network.
    return PublicSuffixList()


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_local_host(host: str) -> bool:
    """Hosts browsers treat as potentially trustworthy even over plain http."""
    host = host.lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return is_ip_address(host) and ipaddress.ip_address(host).is_loopback


def site_of(origin: Origin) -> str:
    """The schemeful site of ``origin``: ``scheme://`` plus its registrable domain (eTLD+1).

    IP addresses, ``localhost``, ``*.localhost`` and hosts that are themselves public suffixes
    (``github.io``) have no registrable domain and are their own site. Ports never matter.
    """
    scheme = origin.scheme.lower()
    host = origin.host.lower()
    if is_ip_address(host):
        return Origin(scheme, host, None).serialize()
    registrable = _public_suffix_list().privatesuffix(host)
    return f"{scheme}://{registrable or host}"


def is_same_site(a: Origin, b: Origin) -> bool:
    """Whether ``a`` and ``b`` are the same schemeful site (``http`` and ``https`` differ)."""
    return site_of(a) == site_of(b)


class OriginAllowlist:
    """The one list of trusted origins, matched exactly (after canonicalisation).

    It drives CORS, CSRF origin checks and post-login redirects; never matched by pattern.
    """

    __slots__ = ("_set", "origins")

    def __init__(self, origins: Iterable[str]) -> None:
        if isinstance(origins, str):
            raise TypeError(
                "OriginAllowlist takes an iterable of origins, not a single string; "
                "write OriginAllowlist([origin])."
            )
        parsed: list[Origin] = []
        for entry in origins:
            if isinstance(entry, str) and entry.strip() == "*":
                raise ValueError(f"'*' cannot be an allowed origin: {_WILDCARD_MESSAGE}.")
            origin = parse_origin(entry)
            if origin not in parsed:
                parsed.append(origin)
        self.origins: tuple[Origin, ...] = tuple(parsed)
        self._set: frozenset[Origin] = frozenset(parsed)

    def allows(self, origin_header: str | None) -> bool:
        """Whether an ``Origin`` header value is exactly one of the allowed origins.

        ``None``, ``""``, ``"null"`` and anything that is not a strict origin are refused;
        this never raises.
        """
        if not isinstance(origin_header, str) or not origin_header or len(origin_header) > 2048:
            return False
        try:
            origin = parse_origin(origin_header)
        except ValueError:
            return False
        return origin in self._set

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Origin):
            return item in self._set
        if isinstance(item, str):
            return self.allows(item)
        return False

    def __iter__(self) -> Iterator[Origin]:
        return iter(self.origins)

    def __len__(self) -> int:
        return len(self.origins)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OriginAllowlist):
            return NotImplemented
        return self._set == other._set

    def __hash__(self) -> int:
        return hash(self._set)

    def __repr__(self) -> str:
        return f"OriginAllowlist({list(self.as_strings())!r})"

    def as_strings(self) -> tuple[str, ...]:
        """The allowed origins in canonical text form, in configuration order."""
        return tuple(origin.serialize() for origin in self.origins)


@dataclass(frozen=True)
class CookiePolicy:
    """Cookie attributes that follow from where the frontends live relative to the server.

    ``SameSite=Lax`` when every allowed origin is same-site with the public URL; otherwise
    ``SameSite=None`` with ``Partitioned`` (CHIPS), and ``cross_site_origins`` says why.
    ``Secure`` is always set: browsers accept Secure cookies on ``http://localhost`` too.
    """

    samesite: Literal["Lax", "None"]
    secure: bool
    partitioned: bool
    cross_site_origins: tuple[str, ...]


def derive_cookie_policy(public_url: str, allowlist: OriginAllowlist) -> CookiePolicy:
    """Choose cookie attributes from the server's public URL and the allowed origins."""
    public_origin = origin_of_url(public_url)
    if public_origin is None:
        raise ValueError(
            f"The public URL {_shorten(str(public_url))} is not an absolute http(s) URL "
            "such as https://auth.example.com."
        )
    cross_site = tuple(
        origin.serialize() for origin in allowlist if not is_same_site(origin, public_origin)
    )
    if cross_site:
        return CookiePolicy(
            samesite="None", secure=True, partitioned=True, cross_site_origins=cross_site
        )
    return CookiePolicy(samesite="Lax", secure=True, partitioned=False, cross_site_origins=())


# Look-alikes and "did you mean" ---------------------------------------------------------------

LookalikeKind = Literal["scheme", "port", "prefix", "suffix", "confusable"]

_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Characters drawn like ASCII letters in host names (Cyrillic, Greek, Latin extensions, digits).
# Marks such as the macron of "ā" are removed by NFKD before this table applies.
_CONFUSABLES = str.maketrans(
    {
        **dict(
            zip(
                "\u0430\u0432\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u04bb\u0501\u04cf\u051b\u051d",
                "abeopcyxijshdlqw",
                strict=True,
            )
        ),  # Cyrillic
        **dict(
            zip("\u03b1\u03bf\u03c1\u03bd\u03b9\u03ba\u03b5\u03c5", "aopvikeu", strict=True)
        ),  # Greek
        **dict(zip("\u0131\u0261\u0142", "igl", strict=True)),  # dotless i, script g, l-stroke
        "\u00df": "ss",
        "0": "o",
        "1": "l",
    }
)
_CONFUSABLE_SEQUENCES = (("rn", "m"), ("vv", "w"))


@dataclass(frozen=True, slots=True)
class Lookalike:
    """``origin`` resembles the allowed ``allowed`` without being it, in the way ``kind`` says:
    another ``scheme`` or ``port`` of the same host; the allowed host at the start (``prefix``:
    ``app.example.com.evil.test``) or end (``suffix``: ``evilapp.example.com``) of a longer
    host; or a host drawn the same (``confusable``: a Cyrillic ``\\u0430``, ``0`` for ``o``)."""

    origin: Origin
    allowed: Origin
    kind: LookalikeKind

    def describe(self) -> str:
        """Why ``origin`` only looks like ``allowed``, as one clause."""
        allowed, origin = self.allowed, self.origin
        if self.kind == "scheme":
            return f"it is the allowed {allowed} with {origin.scheme}:// instead of {allowed.scheme}://"
        if self.kind == "port":
            return f"it is the allowed {allowed} on another port ({origin.netloc})"
        if self.kind == "prefix":
            return (
                f"its host {origin.host} only starts with the allowed host {allowed.host}: "
                "it is another host, which anyone can register"
            )
        if self.kind == "suffix":
            return (
                f"its host {origin.host} only ends with the allowed host {allowed.host}: "
                "it is another host"
            )
        return (
            f"its host {origin.host} is drawn like the allowed host {allowed.host} "
            "(homoglyphs or an internationalised name), but is another host"
        )


def _skeleton(host: str) -> str:
    """``host`` as it looks: xn-- labels decoded, marks dropped, confusables mapped to ASCII."""
    labels = []
    for label in host.lower().split("."):
        if label.startswith("xn--"):
            with contextlib.suppress(UnicodeError):
                label = label[4:].encode("ascii").decode("punycode")
        labels.append(label)
    text = unicodedata.normalize("NFKD", ".".join(labels))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.translate(_CONFUSABLES)
    for sequence, drawn_as in _CONFUSABLE_SEQUENCES:
        text = text.replace(sequence, drawn_as)
    return text


def _same_machine(a: str, b: str) -> bool:
    return a == b or (a in _LOOPBACK_NAMES and b in _LOOPBACK_NAMES)


def _lookalike_kind(origin: Origin, allowed: Origin) -> LookalikeKind | None:
    if _same_machine(origin.host, allowed.host):
        if origin.scheme != allowed.scheme:
            return "scheme"
        if origin.port != allowed.port:
            return "port"
        return None  # the same origin, or a loopback alias on the same port: a near miss
    if is_ip_address(origin.host) or is_ip_address(allowed.host):
        return None
    host, allowed_host = origin.host, allowed.host
    if host.startswith(allowed_host):
        return "prefix"
    if host.endswith(allowed_host):
        return "suffix"
    skeleton, allowed_skeleton = _skeleton(host), _skeleton(allowed_host)
    if skeleton == allowed_skeleton:
        return "confusable"
    if skeleton.startswith(allowed_skeleton):
        return "prefix"
    if skeleton.endswith(allowed_skeleton):
        return "suffix"
    return None


def classify_lookalike(origin: Origin, allowed: Iterable[Origin]) -> Lookalike | None:
    """The allowed origin that ``origin`` only resembles, or ``None`` when ``origin`` is one of
    them or resembles none. A look-alike must never be suggested for the allowlist: it is what
    a phishing page or a mistyped address looks like. ``localhost``, ``127.0.0.1`` and
    ``[::1]`` on the same scheme and port are the same machine, not look-alikes.

    When several allowed origins are resembled, the closest is named: the same host before a
    loopback alias, another port or scheme before a longer or confusable host."""
    candidates = list(allowed)
    if origin in candidates:
        return None
    if any(
        _same_machine(origin.host, c.host) and (origin.scheme, origin.port) == (c.scheme, c.port)
        for c in candidates
    ):
        return None  # a loopback alias of an allowed origin: a near miss, said elsewhere
    ranks: dict[LookalikeKind, int] = {
        "port": 0,
        "scheme": 1,
        "prefix": 2,
        "suffix": 3,
        "confusable": 4,
    }
    found: list[tuple[tuple[int, int, int], Lookalike]] = []
    for candidate in candidates:
        kind = _lookalike_kind(origin, candidate)
        if kind is not None:
            closeness = (
                int(origin.host != candidate.host),
                ranks[kind],
                int(origin.port != candidate.port),
            )
            found.append((closeness, Lookalike(origin, candidate, kind)))
    if not found:
        return None
    return min(found, key=lambda item: item[0])[1]


@dataclass(frozen=True, slots=True)
class RefusedOrigin:
    """What to tell about an origin that is not allowed (see :func:`explain_refused_origin`).

    ``lookalike`` is set when the origin only resembles an allowed one: it must not be added.
    ``did_you_mean`` holds allowed origins it nearly is. ``switches_cookies`` says whether
    adding it would turn every cookie from ``SameSite=Lax`` to ``SameSite=None; Partitioned``.
    """

    origin: Origin
    own: Origin
    lookalike: Lookalike | None
    did_you_mean: tuple[Origin, ...]
    switches_cookies: bool

    @property
    def may_be_allowed(self) -> bool:
        """Whether advising to add the origin to the allowlist is sound."""
        return self.lookalike is None

    def hint(self) -> str:
        """ "Did you mean …" and, for a look-alike, why it is one; ``""`` when there is none."""
        if self.lookalike is not None:
            if self.lookalike.kind in ("scheme", "port"):
                rule = (
                    "Scheme, host and port must match exactly, and authgate never suggests "
                    "allowing another scheme or port of an allowed origin."
                )
            else:
                rule = "Do not add it to AUTHGATE_ORIGINS."
            return (
                f"Did you mean {self.lookalike.allowed}? {self.origin} is a look-alike of it: "
                f"{self.lookalike.describe()}. {rule}"
            )
        if self.did_you_mean:
            return (
                f"Did you mean {' or '.join(map(str, self.did_you_mean))}? Scheme, host and port "
                "must match exactly (localhost is not 127.0.0.1)."
            )
        return ""

    def cookie_consequence(self) -> str:
        """What adding the origin does to the cookies; ``""`` when it changes nothing."""
        if not self.switches_cookies:
            return ""
        return (
            f"Adding it switches every authgate cookie from SameSite=Lax to SameSite=None; "
            f"Secure; Partitioned, because {self.origin} (site {site_of(self.origin)}) is not "
            f"the same site as the API {self.own} (site {site_of(self.own)}): browsers that "
            "block third-party cookies (Safari by default) then drop them for that page."
            + (
                f" Opening the page at {self.did_you_mean[0]} instead keeps them first-party."
                if self.did_you_mean and is_same_site(self.did_you_mean[0], self.own)
                else ""
            )
        )

    def advice(self) -> str:
        """What to do, in one or more sentences; never to allow a look-alike."""
        if self.lookalike is not None:
            if self.lookalike.kind in ("scheme", "port"):
                return (
                    f"Open the page at exactly {self.lookalike.allowed} (serve the frontend "
                    "with the scheme and port listed in AUTHGATE_ORIGINS)."
                )
            return (
                f"If this is your page, open it at exactly {self.lookalike.allowed}; a page "
                f"on {self.origin} must stay refused."
            )
        return " ".join(
            part
            for part in (
                f"Add {self.origin} to AUTHGATE_ORIGINS (exactly: scheme, host and port) and "
                "restart the server.",
                self.cookie_consequence(),
            )
            if part
        )


def explain_refused_origin(
    origin: Origin, own: Origin, allowlist: OriginAllowlist
) -> RefusedOrigin:
    """Why ``origin`` (not allowed, not ``own``) is refused, and what may be done about it."""
    lookalike = classify_lookalike(origin, [own, *allowlist])
    if lookalike is not None:
        near: tuple[Origin, ...] = (lookalike.allowed,)
    else:
        near = tuple(
            allowed
            for allowed in [own, *allowlist]
            if allowed != origin
            and allowed.scheme == origin.scheme
            and allowed.port == origin.port
            and (
                _same_machine(allowed.host, origin.host)
                or allowed.host.removeprefix("www.") == origin.host.removeprefix("www.")
            )
        )
    policy_lax = all(is_same_site(allowed, own) for allowed in allowlist)
    return RefusedOrigin(
        origin=origin,
        own=own,
        lookalike=lookalike,
        did_you_mean=near,
        switches_cookies=policy_lax and not is_same_site(origin, own),
    )
