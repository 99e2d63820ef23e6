"""A small SCRAM client (RFC 5802) for tests, with any channel-binding type (RFC 9266 too).

``downgrade_protected`` checks the XEP-0474 'h' attribute of the server-first-message against
the mechanisms and channel-binding types the client saw advertised.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


class ScramClient:
    def __init__(self, mechanism: str, username: str, password: str,
                 binding: tuple[str, bytes] | None = None, flag: str | None = None) -> None:
        self.hash = hashlib.sha256 if "SHA-256" in mechanism else hashlib.sha1
        self.password = password.encode()
        self.binding = binding
        if flag is None:
            flag = f"p={binding[0]}" if binding else "n"
        self.gs2 = f"{flag},,"
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.first_bare = f"n={username},r={self.nonce}"
        self.auth_message = b""
        self.salted = b""

    def first(self) -> bytes:
        return (self.gs2 + self.first_bare).encode()

    def final(self, server_first: bytes) -> bytes:
        attrs = dict(part.split("=", 1) for part in server_first.decode().split(","))
        assert attrs["r"].startswith(self.nonce)
        self.salted = hashlib.pbkdf2_hmac(self.hash().name, self.password,
                                          base64.b64decode(attrs["s"]), int(attrs["i"]))
        cb = self.gs2.encode() + (self.binding[1] if self.binding else b"")
        without_proof = f"c={base64.b64encode(cb).decode()},r={attrs['r']}"
        self.auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        client_key = hmac.new(self.salted, b"Client Key", self.hash).digest()
        stored_key = self.hash(client_key).digest()
        signature = hmac.new(stored_key, self.auth_message, self.hash).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> bool:
        server_key = hmac.new(self.salted, b"Server Key", self.hash).digest()
        expected = hmac.new(server_key, self.auth_message, self.hash).digest()
        return server_final.decode() == "v=" + base64.b64encode(expected).decode()

    def downgrade_protected(self, server_first: bytes, mechanisms: list[str],
                            bindings: list[str]) -> bool:
        """XEP-0474 §6.2: the server's 'h' matches what was advertised (sorted, %x1E-joined
        mechanisms; %x1F and the channel-binding types when XEP-0440 listed any)."""
        attrs = dict(part.split("=", 1) for part in server_first.decode().split(","))
        text = "\x1e".join(sorted(mechanisms))
        if bindings:
            text += "\x1f" + "\x1e".join(sorted(bindings))
        expected = base64.b64encode(self.hash(text.encode()).digest()).decode()
        return attrs.get("h") == expected
