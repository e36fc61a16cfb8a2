"""``authgate doctor``: what is wrong with a deployment, each problem with its fix.

Every check is a plain function returning :class:`Finding` objects and never raising: an
unreachable database, a refused connection or a bad certificate is itself a finding. The checks
read the settings (as ``authgate serve`` would), the key directory, the database and Redis; with a
URL they also probe the running deployment as a browser would meet it: its certificate, the
plain-http redirect, HSTS and CORS preflights, reading raw header lists (a repeated
``Access-Control-Allow-Origin`` is an error that joined headers would hide).

Check ids are ``<group>.<name>`` (``origins.http_in_production``, ``url.tls.expired``); the group
is everything before the last dot. ``docs/doctor.md`` lists them all.

One module per group of checks: :mod:`.settings`, :mod:`.production`, :mod:`.keys`,
:mod:`.origins`, :mod:`.cookies`, :mod:`.oauth`, :mod:`.database`, :mod:`.clock`,
:mod:`.redis_checks`, :mod:`.mail`, :mod:`.legacy`; with a URL :mod:`.deployment` (through
:mod:`.probes`), :mod:`.tls`, :mod:`.redirects`, :mod:`.hsts`, :mod:`.preflights` and
:mod:`.server_reports`; ``doctor cors`` is :mod:`.cors_explainer`.
:mod:`.runner` runs them all, :mod:`.reports` prints them, :mod:`.cli` is the command line.
"""

from __future__ import annotations

from authgate.doctor.clock import check_clock_skew
from authgate.doctor.cookies import check_cookies
from authgate.doctor.cors_explainer import explain_origin, probe_origin
from authgate.doctor.database import check_database
from authgate.doctor.deployment import check_deployment
from authgate.doctor.findings import GROUP_ORDER, Finding, sort_findings
from authgate.doctor.hsts import check_hsts
from authgate.doctor.keys import check_keys
from authgate.doctor.legacy import check_legacy
from authgate.doctor.mail import check_mail, check_mail_templates
from authgate.doctor.oauth import check_oauth
from authgate.doctor.origins import check_origins, check_raw_origins
from authgate.doctor.preflights import (
    PreflightAnswer,
    check_lookalikes,
    check_preflight,
    lookalike_origins,
    send_preflight,
)
from authgate.doctor.production import check_production_refusals, check_public_url
from authgate.doctor.redirects import check_http_redirect
from authgate.doctor.redis_checks import check_redis, check_redis_url
from authgate.doctor.runner import run_doctor
from authgate.doctor.settings import load_doctor_settings
from authgate.doctor.tls import check_tls_certificate

__all__ = [
    "GROUP_ORDER",
    "Finding",
    "PreflightAnswer",
    "check_clock_skew",
    "check_cookies",
    "check_database",
    "check_deployment",
    "check_hsts",
    "check_http_redirect",
    "check_keys",
    "check_legacy",
    "check_lookalikes",
    "check_mail",
    "check_mail_templates",
    "check_oauth",
    "check_origins",
    "check_preflight",
    "check_production_refusals",
    "check_public_url",
    "check_raw_origins",
    "check_redis",
    "check_redis_url",
    "check_tls_certificate",
    "explain_origin",
    "load_doctor_settings",
    "lookalike_origins",
    "probe_origin",
    "run_doctor",
    "send_preflight",
    "sort_findings",
]
