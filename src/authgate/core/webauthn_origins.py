"""Which origins may use passkeys of one WebAuthn Relying Party ID.

A passkey belongs to an RP ID, a domain. A page may use it when its host is the RP ID or one of
its subdomains; a page of another site only through *Related Origin Requests* (WebAuthn Level 3,
§5.11): the browser fetches ``https://<RP ID>/.well-known/webauthn`` and looks for the page's
origin in its ``{"origins": [...]}``. Browsers read at most five distinct *labels* there (the
registrable domain's first label: ``example`` of ``app.example.co.uk``), so a list with more
may be ignored in part.

``webauthn_origins`` decides it once, from the settings: the RP ID, the origins whose
``clientDataJSON.origin`` a ceremony accepts, and the related origins the well-known document
lists. With an RP ID set explicitly, an allowed origin that cannot use it is refused with the
fix; with the default (the public URL's host), such an origin is left out (passkeys are not
offered there) so that existing deployments keep starting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from authgate.core.origins import (
    Origin,
    _public_suffix_list,
    is_ip_address,
    is_local_host,
    parse_origin,
)

__all__ = [
    "MAX_RELATED_LABELS",
    "WebAuthnOrigins",
    "origin_label",
    "webauthn_origins",
]

MAX_RELATED_LABELS = 5
WELL_KNOWN_PATH = "/.well-known/webauthn"


@dataclass(frozen=True, slots=True)
class WebAuthnOrigins:
    """``rp_id`` None: passkeys are unavailable (the public URL's host is an IP address and no
    RP ID was set). ``expected``: the origins accepted in a ceremony's client data, the public
    origin first. ``related``: those outside the RP ID, served at ``/.well-known/webauthn``.
    ``left_out``: allowed origins that cannot use the RP ID (default RP ID only), each with
    why."""

    rp_id: str | None
    public_origin: str
    expected: tuple[str, ...]
    related: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...] = ()

    def well_known(self) -> dict[str, list[str]]:
        """The Related Origin Requests document: the public origin and the related ones."""
        return {"origins": [self.public_origin, *self.related]}


def origin_label(host: str) -> str | None:
    """The label a browser counts for a related origin: the first label of the host's
    registrable domain; None for an IP address or a host without one (``localhost``)."""
    if is_ip_address(host):
        return None
    registrable = _public_suffix_list().privatesuffix(host.lower())
    if not registrable:
        return None
    return registrable.split(".", 1)[0]


def _within(host: str, rp_id: str) -> bool:
    host = host.lower()
    return host == rp_id or host.endswith("." + rp_id)


def _check_rp_id(rp_id: str) -> str:
    rp_id = rp_id.strip().lower().rstrip(".")
    try:
        origin = parse_origin(f"https://{rp_id}")
    except ValueError:
        origin = None
    if origin is None or origin.port is not None or origin.host != rp_id:
        raise ValueError(
            f"AUTHGATE_WEBAUTHN_RP_ID={rp_id!r} is not a domain name: set a host name such as "
            "example.com (no scheme, port or path)"
        )
    if is_ip_address(rp_id):
        raise ValueError(
            f"AUTHGATE_WEBAUTHN_RP_ID={rp_id} is an IP address, which browsers refuse as an RP "
            "ID: serve authgate under a host name and set that name (or localhost in development)"
        )
    if rp_id != "localhost" and _public_suffix_list().is_public(rp_id):
        raise ValueError(
            f"AUTHGATE_WEBAUTHN_RP_ID={rp_id} is a public suffix: set your own registrable "
            "domain or a host below it, such as example.com"
        )
    return rp_id


def _is_secure(origin: Origin) -> bool:
    return origin.scheme == "https" or is_local_host(origin.host)


def webauthn_origins(rp_id: str | None, public_url: str, origins: Iterable[str]) -> WebAuthnOrigins:
    """Decide the passkey origins, or ``ValueError`` with the fix (see the module)."""
    public = parse_origin(public_url)
    explicit = rp_id is not None and rp_id.strip() != ""
    if not explicit:
        if is_ip_address(public.host):
            return WebAuthnOrigins(None, public.serialize(), (), ())
        rp_id = public.host
    checked = _check_rp_id(rp_id or "")
    if not _within(public.host, checked):
        raise ValueError(
            f"AUTHGATE_WEBAUTHN_RP_ID={checked} cannot be used by the public URL {public_url} "
            f"(its login and account pages): set AUTHGATE_WEBAUTHN_RP_ID to {public.host} or a "
            "parent domain of it"
        )
    # Related origins are fetched from https://<RP ID>/.well-known/webauthn: authgate serves
    # that document only when it is that origin.
    serves_well_known = public.host == checked and public.scheme == "https" and public.port is None
    expected = [public.serialize()]
    related: list[str] = []
    left_out: list[tuple[str, str]] = []
    labels: list[str] = []
    for text in origins:
        origin = parse_origin(text)
        shown = origin.serialize()
        problem = _origin_problem(origin, checked, serves_well_known, public_url)
        if problem is None and not _within(origin.host, checked):
            label = origin_label(origin.host) or ""
            if label not in labels and len(labels) >= MAX_RELATED_LABELS:
                problem = (
                    f"browsers read at most {MAX_RELATED_LABELS} distinct site labels from "
                    f"{WELL_KNOWN_PATH} ({', '.join(labels)} already): move some frontends "
                    f"under the RP ID {checked}"
                )
            else:
                if label not in labels:
                    labels.append(label)
                related.append(shown)
        if problem is not None:
            if explicit:
                raise ValueError(f"the allowed origin {shown} cannot use passkeys: {problem}")
            left_out.append((shown, problem))
            continue
        if shown not in expected:
            expected.append(shown)
    return WebAuthnOrigins(
        checked, public.serialize(), tuple(expected), tuple(related), tuple(left_out)
    )


def _origin_problem(
    origin: Origin, rp_id: str, serves_well_known: bool, public_url: str
) -> str | None:
    if not _is_secure(origin):
        return "WebAuthn needs a secure context: serve it over https (or from localhost)"
    if _within(origin.host, rp_id):
        return None
    fix = (
        f"its host is not {rp_id} nor a subdomain of it; set AUTHGATE_WEBAUTHN_RP_ID to a "
        "parent domain shared by the public URL and this origin"
    )
    if origin.scheme != "https" or origin_label(origin.host) is None:
        return fix + " (a related origin must be an https origin with a registrable domain)"
    if not serves_well_known:
        return (
            fix + f", or serve authgate at https://{rp_id} (now {public_url}) so that browsers "
            f"find this origin listed at https://{rp_id}{WELL_KNOWN_PATH}"
        )
    return None
