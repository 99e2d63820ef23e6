"""SCRAM server exchange (RFC 5802, RFC 7677) with channel binding (RFC 5929, RFC 9266).

The server-first-message may carry XEP-0474's downgrade-protection attribute 'h' (an RFC 5802
§5.1 extension): the hash of the mechanisms and channel-binding types the server advertised,
which the client compares with what it saw; SCRAM's proof then covers it.

Written here rather than taken from scramp because scramp refuses the tls-exporter binding
that TLS 1.3 needs; scramp still derives the stored keys (``accounts.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


class ScramError(Exception):
    """The exchange failed; ``str()`` is the RFC 5802 server-error value."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _attrs(message: str) -> list[tuple[str, str]]:
    out = []
    for part in message.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ScramError("invalid-encoding")
        out.append((part[0], part[2:]))
    return out


class ScramServer:
    """One exchange: ``client_first`` -> server-first; the client-final-message through
    ``parse_final``, then ``verify`` -> server-final (the caller counts the proof check)."""

    def __init__(self, mechanism: str, salt: bytes, iterations: int, stored_key: bytes,
                 server_key: bytes, bindings: dict[str, bytes],
                 ssdp: bytes | None = None) -> None:
        self.plus = mechanism.endswith("-PLUS")
        self.hash = hashlib.sha256 if "SHA-256" in mechanism else hashlib.sha1
        self.salt = salt
        self.iterations = iterations
        self.stored_key = stored_key
        self.server_key = server_key
        self.bindings = bindings  # the channel-binding types this stream supports -> data
        self.ssdp = ssdp  # XEP-0474: the advertised lists, as a string to hash
        self.gs2_header = ""
        self.cb_data = b""
        self.client_first_bare = ""
        self.server_first = ""
        self.nonce = ""

    @staticmethod
    def parse_client_first(message: str) -> tuple[str, str, str, str]:
        """(gs2 flag, authzid, username, client-first-bare); RFC 5802 §7."""
        try:
            flag, authzid, bare = message.split(",", 2)
        except ValueError:
            raise ScramError("other-error") from None
        if not (flag in ("n", "y") or flag.startswith("p=")):
            raise ScramError("other-error")
        if authzid and not authzid.startswith("a="):
            raise ScramError("other-error")
        attrs = _attrs(bare)
        if not attrs or attrs[0][0] == "m":
            raise ScramError("extensions-not-supported")
        if attrs[0][0] != "n" or len(attrs) < 2 or attrs[1][0] != "r" or not attrs[1][1]:
            raise ScramError("other-error")
        username = attrs[0][1]
        if "=" in username.replace("=2C", "").replace("=3D", ""):
            raise ScramError("invalid-username-encoding")
        username = username.replace("=2C", ",").replace("=3D", "=")
        return flag, authzid[2:], username, bare

    def client_first(self, message: str) -> str:
        flag, _, _, bare = self.parse_client_first(message)
        if flag.startswith("p="):
            # RFC 5802 §6: 'p' only with a -PLUS mechanism, and a binding type we support.
            if not self.plus:
                raise ScramError("other-error")
            kind = flag[2:]
            if kind not in self.bindings:
                raise ScramError("unsupported-channel-binding-type")
            self.cb_data = self.bindings[kind]
        elif self.plus:
            raise ScramError("channel-binding-not-supported")
        elif flag == "y" and self.bindings:
            # The client could bind but believes we cannot: a downgrade (RFC 5802 §6).
            raise ScramError("server-does-support-channel-binding")
        self.gs2_header = message[: len(message) - len(bare)]
        self.client_first_bare = bare
        self.nonce = _attrs(bare)[1][1] + _b64(secrets.token_bytes(18))
        self.server_first = f"r={self.nonce},s={_b64(self.salt)},i={self.iterations}"
        if self.ssdp is not None:
            # XEP-0474 §6.1: hashed with the mechanism's own hash function.
            self.server_first += ",h=" + _b64(self.hash(self.ssdp).digest())
        return self.server_first

    def parse_final(self, message: str) -> tuple[bytes, bytes]:
        """The client-final-message's AuthMessage and proof, once its channel binding and nonce
        are right (else ScramError): all that comes before the proof is checked."""
        attrs = _attrs(message)
        if len(attrs) < 3 or attrs[0][0] != "c" or attrs[1][0] != "r" or attrs[-1][0] != "p":
            raise ScramError("other-error")
        try:
            binding = base64.b64decode(attrs[0][1], validate=True)
            proof = base64.b64decode(attrs[-1][1], validate=True)
        except ValueError:
            raise ScramError("invalid-encoding") from None
        if not hmac.compare_digest(binding, self.gs2_header.encode() + self.cb_data):
            raise ScramError("channel-bindings-dont-match")
        if attrs[1][1] != self.nonce:
            raise ScramError("other-error")
        without_proof = message[: message.rindex(",p=")]
        auth_message = f"{self.client_first_bare},{self.server_first},{without_proof}".encode()
        return auth_message, proof

    def verify(self, auth_message: bytes, proof: bytes) -> str:
        """The proof check (RFC 5802 §3): the server-final-message, or ScramError."""
        signature = hmac.new(self.stored_key, auth_message, self.hash).digest()
        if len(proof) != len(signature):
            raise ScramError("invalid-proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(self.hash(client_key).digest(), self.stored_key):
            raise ScramError("invalid-proof")
        server_signature = hmac.new(self.server_key, auth_message, self.hash).digest()
        return "v=" + _b64(server_signature)
