"""The redirect URI each OAuth provider must have registered, and what breaks it (group
``oauth``)."""

from __future__ import annotations

from authgate.config import Settings
from authgate.core.origins import is_local_host, parse_origin
from authgate.doctor.findings import Finding, error_finding, ok_finding
from authgate.http.routes import OAUTH_CALLBACK_PATH

__all__ = ["check_oauth"]

_PROVIDER_CONSOLES = {
    "github": "GitHub: Settings > Developer settings > OAuth Apps > Authorization callback URL",
    "google": "Google Cloud console: APIs & Services > Credentials > Authorized redirect URIs",
    "oidc": "the provider's client settings (allowed redirect URIs)",
}


def check_oauth(settings: Settings) -> list[Finding]:
    """The redirect URI each provider must have registered, and what breaks it."""
    if not settings.oauth_providers:
        return [ok_finding("oauth.none", "No OAuth providers are configured.")]
    own = parse_origin(settings.public_url)
    findings: list[Finding] = []
    for name, provider in sorted(settings.oauth_providers.items()):
        uri = settings.public_url + OAUTH_CALLBACK_PATH.format(provider=name)
        label = f"{provider.label(name)} ({name})"
        if provider.allow_http and settings.is_production:
            findings.append(
                error_finding(
                    "oauth.allow_http_in_production",
                    f"OAuth provider {label} allows plain http: production talks to providers "
                    "over https only (the server refuses to start).",
                    f"Unset AUTHGATE_OAUTH_{name.upper()}_ALLOW_HTTP and use the provider's "
                    "https URLs.",
                )
            )
        if own.scheme == "http" and (settings.is_production or not is_local_host(own.host)):
            findings.append(_http_redirect_uri(label, uri, production=settings.is_production))
        findings.append(
            ok_finding(
                "oauth.redirect_uri",
                f"{label}: the provider must have exactly {uri} registered as redirect URI.",
                f"Register it in {_PROVIDER_CONSOLES[provider.kind]}; it follows "
                "AUTHGATE_PUBLIC_URL, so change both together.",
            )
        )
    return findings


def _http_redirect_uri(label: str, uri: str, *, production: bool) -> Finding:
    return Finding(
        "error" if production else "warning",
        "oauth.redirect_uri_http",
        f"{label}: the redirect URI {uri} is plain http"
        + (" in production" if production else " on a host other than localhost")
        + "; providers such as Google refuse to register it, and the login code would travel "
        "unencrypted.",
        "Serve authgate over https, set AUTHGATE_PUBLIC_URL=https://..., and register the https "
        "redirect URI at the provider.",
    )
