"""The pure parts of "Log in with ...": flow secrets, redirect targets, provider metadata and
ID token verification (OpenID Connect Core §3.1.3.7). No HTTP here: the provider clients fetch
documents and keys and pass them in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jwt
from jwt.exceptions import InvalidKeyError, PyJWKError, PyJWTError

from authgate.core.origins import Origin, OriginAllowlist, origin_of_url
from authgate.errors import (
    OAuthInvalidIdTokenError,
    OAuthIssuerMismatchError,
    OAuthProviderResponseError,
)

__all__ = [
    "ID_TOKEN_ALGORITHMS",
    "ExternalProfile",
    "FlowSecrets",
    "IdTokenClaims",
    "ProviderKey",
    "ProviderMetadata",
    "ResponseIssuer",
    "UnknownIdTokenKeyError",
    "add_fragment",
    "add_query_parameter",
    "check_authorization_response_issuer",
    "hash_flow_secret",
    "is_handoff_challenge",
    "new_flow_secrets",
    "parse_discovery_document",
    "parse_jwks",
    "safe_redirect_target",
    "verifier_matches",
    "verify_id_token",
]

# Asymmetric algorithms only: an ID token signed with HS* would be keyed by our client secret
# (we never accept that) or, in the classic confusion attack, by the provider's public key.
ID_TOKEN_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# OpenID Connect Discovery §3: RS256 MUST be supported.
_DEFAULT_ID_TOKEN_ALGORITHM = "RS256"  # noqa: S105 - an algorithm name
_MAX_ID_TOKEN_CHARS = 16 * 1024
# An ID token comes straight from the token endpoint: one issued long ago, or in the future, is
# a replay or a forgery (allowing for clocks that differ by ``leeway``).
_MAX_ID_TOKEN_AGE_SECONDS = 600


@dataclass(frozen=True, slots=True)
class FlowSecrets:
    """The random values of one authorization request. ``binding`` goes into a cookie of the
    browser that started the flow; ``state`` and ``nonce`` travel through the provider;
    ``code_verifier`` (PKCE) never leaves the server."""

    state: str
    nonce: str
    code_verifier: str
    binding: str


def new_flow_secrets() -> FlowSecrets:
    return FlowSecrets(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        code_verifier=secrets.token_urlsafe(48),  # 64 characters: RFC 7636 allows 43-128
        binding=secrets.token_urlsafe(32),
    )


_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def is_handoff_challenge(value: str) -> bool:
    """A PKCE-style S256 challenge: base64url of a SHA-256 digest, without padding."""
    return bool(_CHALLENGE.fullmatch(value))


def verifier_matches(verifier: str, challenge: str) -> bool:
    """Whether ``challenge`` is the S256 challenge of ``verifier`` (RFC 7636 §4.6)."""
    if not 43 <= len(verifier) <= 128 or not verifier.isascii():
        return False
    digest = hashlib.sha256(verifier.encode()).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return hmac.compare_digest(computed, challenge)


def add_fragment(url: str, name: str, value: str, *more: tuple[str, str]) -> str:
    """``url`` with its fragment replaced by ``name=value`` (and the pairs of ``more``): never
    sent to any server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(fragment=urlencode([(name, value), *more])))


def hash_flow_secret(value: str) -> str:
    """How flow secrets are stored and looked up: never in plain text."""
    return hashlib.sha256(value.encode()).hexdigest()


def safe_redirect_target(
    target: str | None, *, own_origin: Origin, allowlist: OriginAllowlist
) -> str | None:
    """``target`` as an absolute URL if it stays on our own origin or an allowed one; else None.

    A relative target must be a plain path (``/account``): ``//evil.test``, ``/\\evil.test``,
    ``https:evil.test``, ``javascript:``, user info, control characters and look-alike hosts are
    all refused. Absolute targets are compared by exact origin, never by prefix."""
    if not target or len(target) > 2048:
        return None
    if target.startswith("/"):
        if target.startswith(("//", "/\\")) or not _is_plain_text(target):
            return None
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            return None
        return own_origin.serialize() + target
    origin = origin_of_url(target)
    if origin is None or not _is_plain_text(target):
        return None
    if origin != own_origin and origin not in allowlist:
        return None
    parts = urlsplit(target)
    return origin.serialize() + urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))


def _is_plain_text(value: str) -> bool:
    return value.isascii() and value.isprintable() and " " not in value and "\\" not in value


def add_query_parameter(url: str, name: str, value: str) -> str:
    """``url`` with ``name=value`` added to its query (replacing an earlier ``name``)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The endpoints of an OpenID Provider (from its discovery document)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    id_token_algorithms: frozenset[str]
    token_auth_methods: tuple[str, ...]
    # RFC 9207 §3: it puts ``iss`` in every authorization response (only a JSON true counts).
    iss_parameter_supported: bool = False


def parse_discovery_document(
    document: object, *, expected_issuer: str, allow_http: bool
) -> ProviderMetadata:
    """Check an OpenID Provider's discovery document (OpenID Connect Discovery §4.3: its
    ``issuer`` must be exactly the one we asked) and keep what we use."""
    if not isinstance(document, Mapping):
        raise OAuthProviderResponseError("The provider's discovery document is not a JSON object.")
    if document.get("issuer") != expected_issuer:
        raise OAuthProviderResponseError(
            "The provider's discovery document names another issuer than the one configured."
        )

    def url(name: str, *, required: bool = True) -> str | None:
        value = document.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not _is_provider_url(value, allow_http=allow_http):
            raise OAuthProviderResponseError(
                f"The provider's discovery document has no usable {name}."
            )
        return value

    advertised = document.get("id_token_signing_alg_values_supported")
    algorithms = (
        frozenset(a for a in advertised if isinstance(a, str)) & ID_TOKEN_ALGORITHMS
        if isinstance(advertised, list)
        else frozenset({_DEFAULT_ID_TOKEN_ALGORITHM})
    )
    methods = document.get("token_endpoint_auth_methods_supported")
    return ProviderMetadata(
        issuer=expected_issuer,
        authorization_endpoint=url("authorization_endpoint") or "",
        token_endpoint=url("token_endpoint") or "",
        jwks_uri=url("jwks_uri") or "",
        userinfo_endpoint=url("userinfo_endpoint", required=False),
        id_token_algorithms=algorithms or frozenset({_DEFAULT_ID_TOKEN_ALGORITHM}),
        token_auth_methods=tuple(m for m in methods if isinstance(m, str))
        if isinstance(methods, list)
        else ("client_secret_basic",),
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
        is True,
    )


def _is_provider_url(value: str, *, allow_http: bool) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a port
    except ValueError:
        return False
    schemes = ("https", "http") if allow_http else ("https",)
    return parts.scheme in schemes and bool(parts.hostname) and _is_plain_text(value)


@dataclass(frozen=True, slots=True)
class ResponseIssuer:
    """What the ``iss`` of a provider's authorization response must be (RFC 9207): ``issuer``
    exactly, and present when ``required``. ``issuer`` is None for a provider without a known
    issuer identifier (GitHub: plain OAuth 2.0, no metadata), whose ``iss`` cannot be checked."""

    issuer: str | None
    required: bool = False


def check_authorization_response_issuer(iss: str | None, expected: ResponseIssuer) -> None:
    """Check the ``iss`` parameter of an authorization response, success or error, before
    anything else of it is used (RFC 9207 §2.4): present, it must be the provider's issuer,
    compared as plain strings (no normalisation: ``https://idp.example/`` is not
    ``https://idp.example``); absent, it is refused from a provider whose metadata says it always
    sends one. Without a known issuer there is nothing to compare with: any ``iss`` is ignored.
    Raises ``OAuthIssuerMismatchError``; its message never repeats the value it was sent."""
    if expected.issuer is None:
        return
    if iss is None:
        if expected.required:
            raise OAuthIssuerMismatchError(
                "The provider's answer does not name its issuer (iss), which the provider says "
                "it always does; start again."
            )
        return
    if iss != expected.issuer:
        raise OAuthIssuerMismatchError()


@dataclass(frozen=True, slots=True)
class ProviderKey:
    """A provider's public key, with the algorithm its JWK declares (if it does)."""

    key: jwt.PyJWK
    algorithm: str | None

    def fits(self, algorithm: str) -> bool:
        """A key that names its algorithm signs with that one; otherwise by key type."""
        if self.algorithm is not None:
            return self.algorithm == algorithm
        families = {"RSA": ("RS", "PS"), "EC": ("ES",), "OKP": ("EdDSA",)}
        return algorithm.startswith(families.get(str(self.key.key_type), ()))


def parse_jwks(document: object) -> dict[str, ProviderKey]:
    """The signing keys of a JWKS document by ``kid``; keys we cannot use are skipped."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise OAuthProviderResponseError("The provider's JWKS is not a JSON key set.")
    keys: dict[str, ProviderKey] = {}
    for data in document["keys"]:
        if not isinstance(data, Mapping) or data.get("use", "sig") != "sig":
            continue
        if data.get("kty") not in ("RSA", "EC", "OKP") or "d" in data:
            continue  # symmetric keys never verify an ID token; a private key is a mistake
        kid, declared = data.get("kid"), data.get("alg")
        try:
            key = jwt.PyJWK(dict(data))
        except (PyJWKError, InvalidKeyError, ValueError, TypeError):
            continue
        keys[kid if isinstance(kid, str) else ""] = ProviderKey(
            key, declared if isinstance(declared, str) else None
        )
    return keys


class UnknownIdTokenKeyError(OAuthInvalidIdTokenError):
    """The ID token names a key the JWKS in hand does not have: refresh the JWKS and retry."""


@dataclass(frozen=True, slots=True)
class IdTokenClaims:
    subject: str
    claims: Mapping[str, Any]


def verify_id_token(
    token: object,
    *,
    keys: Mapping[str, ProviderKey],
    algorithms: frozenset[str],
    issuer: str | tuple[str, ...],
    client_id: str,
    nonce: str,
    now: float,
    leeway_seconds: int = 60,
) -> IdTokenClaims:
    """Verify an ID token from the token endpoint (OpenID Connect Core §3.1.3.7): signature by a
    key of the provider's JWKS with an asymmetric algorithm it advertises, ``iss``, ``aud``,
    ``azp``, ``exp``, ``iat`` and ``nonce``. Raises ``OAuthInvalidIdTokenError`` saying which.
    ``issuer`` may name several spellings of one issuer (Google's has two); each exactly."""
    if not isinstance(token, str) or not token or len(token) > _MAX_ID_TOKEN_CHARS:
        raise OAuthInvalidIdTokenError("The provider returned no usable ID token.")
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError as e:
        raise OAuthInvalidIdTokenError("The ID token is malformed.") from e
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in algorithms & ID_TOKEN_ALGORITHMS:
        raise OAuthInvalidIdTokenError(
            f"The ID token's algorithm {str(algorithm)[:20]!r} is not accepted."
        )
    key = _choose_key(keys, header.get("kid"), algorithm)
    try:
        claims = jwt.decode(
            token,
            key=key.key.key,
            algorithms=[algorithm],
            audience=client_id,
            issuer=issuer,
            options={
                "require": ["iss", "sub", "aud", "exp", "iat"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
    except jwt.InvalidAudienceError as e:
        raise OAuthInvalidIdTokenError("The ID token was issued for another client.") from e
    except jwt.InvalidIssuerError as e:
        raise OAuthInvalidIdTokenError("The ID token was issued by another issuer.") from e
    except jwt.InvalidSignatureError as e:
        raise OAuthInvalidIdTokenError("The ID token's signature is invalid.") from e
    except PyJWTError as e:
        raise OAuthInvalidIdTokenError("The ID token is invalid.") from e
    return IdTokenClaims(
        _check_claims(claims, client_id=client_id, nonce=nonce, now=now, leeway=leeway_seconds),
        claims,
    )


def _choose_key(keys: Mapping[str, ProviderKey], kid: object, algorithm: str) -> ProviderKey:
    if isinstance(kid, str):
        key = keys.get(kid)
        if key is None:
            raise UnknownIdTokenKeyError(
                "The ID token is signed by a key the provider does not list."
            )
    elif len(keys) == 1:
        key = next(iter(keys.values()))
    else:
        raise OAuthInvalidIdTokenError("The ID token does not say which key signed it.")
    if not key.fits(algorithm):
        raise OAuthInvalidIdTokenError("The ID token's algorithm does not fit its key.")
    return key


def _check_claims(
    claims: Mapping[str, Any], *, client_id: str, nonce: str, now: float, leeway: int
) -> str:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise OAuthInvalidIdTokenError("The ID token has no usable subject.")
    audience = claims.get("aud")
    azp = claims.get("azp")
    if isinstance(audience, list) and len(audience) > 1 and azp is None:
        raise OAuthInvalidIdTokenError("The ID token has several audiences and no azp.")
    if azp is not None and azp != client_id:
        raise OAuthInvalidIdTokenError("The ID token was authorized for another client.")
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, int | float) or not isinstance(issued, int | float):
        raise OAuthInvalidIdTokenError("The ID token's times are not numbers.")
    if isinstance(expires, bool) or isinstance(issued, bool):
        raise OAuthInvalidIdTokenError("The ID token's times are not numbers.")
    if expires <= now - leeway:
        raise OAuthInvalidIdTokenError("The ID token has expired.")
    if issued > now + leeway or issued < now - leeway - _MAX_ID_TOKEN_AGE_SECONDS:
        raise OAuthInvalidIdTokenError("The ID token was not issued just now.")
    claimed_nonce = claims.get("nonce")
    if not isinstance(claimed_nonce, str) or not hmac.compare_digest(
        claimed_nonce.encode(), nonce.encode()
    ):
        raise OAuthInvalidIdTokenError("The ID token's nonce does not match this login.")
    return subject


@dataclass(frozen=True, slots=True)
class ExternalProfile:
    """Who the provider says the user is. ``subject`` is the identity; the rest is profile."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    avatar_url: str | None
