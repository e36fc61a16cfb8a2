"""Fixtures of the attack tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from authgate.core.keys import SigningKey


@pytest.fixture
def key() -> SigningKey:
    """A fresh Ed25519 signing key, ``kid`` ``k1``: the genuine key the forgeries are tried on."""
    return SigningKey(
        kid="k1",
        private_key=Ed25519PrivateKey.generate(),
        created_at=datetime(2030, 1, 1, tzinfo=UTC),
        dev=False,
    )
