"""Sessions show a device in words, parsed from real User-Agent strings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from authgate.core.devices import describe_device

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (CHROME_LINUX, "Chrome 156 on Linux"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox 133 on Windows 10",
        ),
        (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox 133 on Ubuntu",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mobile Safari 17 on iOS 17",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.1 Safari/605.1.15",
            "Safari 18 on macOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
            "Edge 131 on Windows 10",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.6778.135 Mobile Safari/537.36",
            "Chrome Mobile 131 on Android 14",
        ),
        ("curl/8.5.0", "curl 8"),
        ("python-requests/2.32.3", "Python Requests 2"),
    ],
)
def test_real_user_agents_read_as_a_browser_and_a_system(user_agent: str, device: str) -> None:
    assert describe_device(user_agent) == device


@pytest.mark.parametrize("user_agent", [None, "", "   ", "garbage", "\x00\x01", "x" * 10_000])
def test_no_or_unknown_user_agent_is_none(user_agent: str | None) -> None:
    assert describe_device(user_agent) is None


def test_a_very_long_header_is_cut_before_parsing() -> None:
    assert describe_device(CHROME_LINUX + " " + "y" * 5000) == "Chrome 156 on Linux"


def test_the_parser_is_imported_only_when_a_device_is_described() -> None:
    """Off the hot path: importing the module (as the HTTP schemas do) loads no parser."""
    code = (
        "import sys, authgate.core.devices, authgate.http.schemas\n"
        "assert 'ua_parser' not in sys.modules, 'loaded at import'\n"
        "from authgate.core.devices import describe_device\n"
        "describe_device('curl/8.5.0')\n"
        "assert 'ua_parser' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
