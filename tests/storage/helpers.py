"""Values shared by the storage tests."""

from __future__ import annotations

from storage import ScramCredentials


def creds(mechanism: str = "SCRAM-SHA-256", salt: bytes = b"salt") -> ScramCredentials:
    return ScramCredentials(
        mechanism=mechanism,
        salt=salt,
        iterations=4096,
        stored_key=b"\x00stored" + salt,
        server_key=b"\xffserver" + salt,
    )


BOTH = [creds("SCRAM-SHA-1"), creds("SCRAM-SHA-256")]
