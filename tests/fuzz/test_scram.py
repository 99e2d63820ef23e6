"""Properties of the SCRAM server exchange (xmpp_server/stream/scram.py, RFC 5802): any
client-first or client-final message either continues the exchange or raises ScramError
(which the mechanism turns into a SASL failure), nothing else. The same messages over a real
connection, in both SASL framings' mechanism, are in test_sasl_wire.py."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import example, given
from hypothesis import strategies as st

from tests.support.scram_client import ScramClient
from xmpp_server.stream.scram import ScramError, ScramServer

SALT = b"0123456789abcdef"
ITERATIONS = 4096


def keys(password: str) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), SALT, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).digest()
    return hashlib.sha1(client_key).digest(), server_key


STORED, SERVER = keys("pencil")


def server(mechanism: str = "SCRAM-SHA-1", bindings: dict[str, bytes] | None = None,
           ) -> ScramServer:
    return ScramServer(mechanism, SALT, ITERATIONS, STORED, SERVER, bindings or {},
                       ssdp=b"SCRAM-SHA-1")


# Messages made of SCRAM's own punctuation and attribute letters reach deeper than random text.
_PIECES = st.sampled_from(["n", "y", "p=", "a=", "n=", "r=", "c=", "s=", "i=", "p=", "m=",
                           ",", "=", "=2C", "=3D", "biws", "tls-unique", "user", "\u00e9",
                           "\x00", "=="])
scram_like = st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=14).map("".join)
messages = st.one_of(st.text(max_size=60), scram_like)
mechanisms = st.sampled_from(["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS"])
binding_sets = st.sampled_from([{}, {"tls-exporter": b"x" * 32},
                                {"tls-unique": b"u" * 12, "tls-server-end-point": b"e" * 32}])


@given(messages)
@example("n,,n=user,r=")
@example("p=,,n=u,r=x")
@example("n,a,n=u,r=x")
@example("n,,m=ext,n=u,r=x")
@example("n,,n=a=b,r=x")
def test_client_first_parses_or_fails_with_scram_error(message: str) -> None:
    try:
        flag, _authzid, _username, bare = ScramServer.parse_client_first(message)
    except ScramError:
        return
    assert message.endswith(bare) and flag in message


@given(mechanisms, binding_sets, messages)
def test_client_first_answers_or_fails(mechanism: str, bindings: dict[str, bytes],
                                       message: str) -> None:
    try:
        first = server(mechanism, bindings).client_first(message)
    except ScramError:
        return
    attrs = dict(part.split("=", 1) for part in first.split(","))
    assert set(attrs) >= {"r", "s", "i"}


@given(messages, st.booleans())
@example("c=biws,r=x,p=", True)
@example("c=,r=,p=AAAA", True)
@example("c=biws,r=NONCE,p=!!", True)
def test_client_final_fails_with_scram_error(message: str, real_nonce: bool) -> None:
    """Anything but the real proof fails; with the real nonce spliced in it gets further."""
    scram = server()
    client = ScramClient("SCRAM-SHA-1", "user", "pencil")
    scram.client_first(client.first().decode())
    if real_nonce:
        message = message.replace("NONCE", scram.nonce).replace("r=,", f"r={scram.nonce},")
    try:
        scram.verify(*scram.parse_final(message))
    except ScramError:
        return
    raise AssertionError(f"a made-up client-final was accepted: {message!r}")


@given(st.binary(max_size=40), st.sampled_from(["c", "r", "p"]))
def test_tampered_client_final_fails(noise: bytes, attr: str) -> None:
    """A real client-final with one attribute replaced by other bytes (base64 or not)."""
    scram = server()
    client = ScramClient("SCRAM-SHA-1", "user", "pencil")
    final = client.final(scram.client_first(client.first().decode()).encode()).decode()
    fields = dict(part.split("=", 1) for part in final.split(","))
    fields[attr] = base64.b64encode(noise).decode() if noise[:1] != b"!" else noise.hex()
    message = ",".join(f"{k}={v}" for k, v in fields.items())
    if message == final:
        return
    try:
        scram.verify(*scram.parse_final(message))
    except ScramError:
        return
    raise AssertionError(f"a tampered client-final was accepted: {message!r}")


def test_the_real_exchange_succeeds() -> None:
    """The properties above are not vacuous: the genuine exchange gets through."""
    scram = server()
    client = ScramClient("SCRAM-SHA-1", "user", "pencil")
    final = client.final(scram.client_first(client.first().decode()).encode())
    assert client.verify(scram.verify(*scram.parse_final(final.decode())).encode())
