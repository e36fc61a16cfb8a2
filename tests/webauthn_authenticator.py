"""A software WebAuthn authenticator for tests: an EC P-256 key, attestation "none", and the
bytes a real authenticator and browser produce (authenticatorData, clientDataJSON, a DER
ECDSA signature), so that py_webauthn verifies them exactly as it verifies a browser's.

Each knob a test needs to break one check is a parameter: the origin, the challenge, user
presence and verification, the signature counter, the user handle.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers import b64url, b64url_decode

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_BE = 0x08
FLAG_BS = 0x10
FLAG_AT = 0x40


def challenge_of(options: dict[str, Any]) -> str:
    return str(options["challenge"])


@dataclass
class SoftAuthenticator:
    rp_id: str
    origin: str
    sign_count: int = 0
    counter_step: int = 1  # 0: an authenticator without a counter
    synced: bool = False
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    user_handle: bytes | None = None
    aaguid: bytes = b"\x00" * 16

    @property
    def credential_id_b64(self) -> str:
        return b64url(self.credential_id)

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _flags(self, *, up: bool, uv: bool) -> int:
        flags = (FLAG_UP if up else 0) | (FLAG_UV if uv else 0)
        if self.synced:
            flags |= FLAG_BE | FLAG_BS
        return flags

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps(
            {
                "type": kind,
                "challenge": challenge,
                "origin": origin or self.origin,
                "crossOrigin": False,
            },
            separators=(",", ":"),
        ).encode()

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        challenge: str | None = None,
        uv: bool = True,
        rp_id: str | None = None,
    ) -> dict[str, Any]:
        """The ``PublicKeyCredential`` JSON of ``navigator.credentials.create(options)``."""
        self.user_handle = b64url_decode(options["user"]["id"])
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        attested = (
            self.aaguid
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self._cose_key()
        )
        auth_data = (
            rp_hash
            + bytes([self._flags(up=True, uv=uv) | FLAG_AT])
            + struct.pack(">I", self.sign_count)
            + attested
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data(
            "webauthn.create", challenge or challenge_of(options), origin
        )
        return {
            "id": self.credential_id_b64,
            "rawId": self.credential_id_b64,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        challenge: str | None = None,
        uv: bool = True,
        up: bool = True,
        sign_count: int | None = None,
        user_handle: bytes | bool | None = True,
        rp_id: str | None = None,
    ) -> dict[str, Any]:
        """The ``PublicKeyCredential`` JSON of ``navigator.credentials.get(options)``; the
        counter moves on by ``counter_step`` unless ``sign_count`` is given."""
        if sign_count is None:
            self.sign_count += self.counter_step
            sign_count = self.sign_count
        rp_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        auth_data = rp_hash + bytes([self._flags(up=up, uv=uv)]) + struct.pack(">I", sign_count)
        client_data = self._client_data("webauthn.get", challenge or challenge_of(options), origin)
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        handle = self.user_handle if user_handle is True else user_handle or None
        response: dict[str, Any] = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if handle:
            response["userHandle"] = b64url(handle)
        return {
            "id": self.credential_id_b64,
            "rawId": self.credential_id_b64,
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
