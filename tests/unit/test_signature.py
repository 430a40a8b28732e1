"""Ed25519 + timestamp window."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from steadybot.clock import ManualClock
from steadybot.errors import SignatureError
from steadybot.http.signature import SignatureVerifier

KEY = SigningKey(b"k" * 32)


def sign(timestamp: str, body: bytes, key: SigningKey = KEY) -> str:
    return key.sign(timestamp.encode() + body).signature.hex()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def verifier(clock: ManualClock) -> SignatureVerifier:
    return SignatureVerifier(
        KEY.verify_key.encode().hex(), clock=clock, max_age=15, max_skew_ahead=5
    )


def test_a_good_signature_passes(verifier: SignatureVerifier, clock: ManualClock) -> None:
    ts = str(int(clock.time()))
    verifier.verify(sign(ts, b"{}"), ts, b"{}")


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing-signature", "missing"),
        ("missing-timestamp", "missing"),
        ("not-hex", "malformed"),
        ("short", "malformed"),
        ("tampered-body", "bad signature"),
        ("other-key", "bad signature"),
        ("stale", "stale"),
        ("future", "future"),
        ("bad-timestamp", "malformed"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(
    verifier: SignatureVerifier, clock: ManualClock, case: str, reason: str
) -> None:
    now = int(clock.time())
    ts, body = str(now), b'{"type":1}'
    signature: str | None = sign(ts, body)
    if case == "missing-signature":
        signature = None
    elif case == "missing-timestamp":
        ts = ""
    elif case == "not-hex":
        signature = "zz" * 64
    elif case == "short":
        signature = "ab"
    elif case == "tampered-body":
        body = b'{"type":2}'
    elif case == "other-key":
        signature = sign(ts, body, SigningKey(b"o" * 32))
    elif case == "stale":
        ts = str(now - 16)
        signature = sign(ts, body)
    elif case == "future":
        ts = str(now + 6)
        signature = sign(ts, body)
    elif case == "bad-timestamp":
        ts = "yesterday"
    with pytest.raises(SignatureError, match=reason):
        verifier.verify(signature, ts or None, body)


def test_a_malformed_public_key_is_a_clear_configuration_error(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="STEADYBOT_PUBLIC_KEY"):
        SignatureVerifier("nope", clock=clock, max_age=1, max_skew_ahead=1)
