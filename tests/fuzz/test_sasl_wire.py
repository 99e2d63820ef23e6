"""SASL over a real connection with made-up messages: RFC 6120 <auth/>/<response/> and XEP-0388
<authenticate/>/<response/> with any mechanism name and any (base64 or not) payload get a
<challenge/> or a SASL <failure/>, never a stream error other than the one after too many
failures, and never an error in the server's log."""

from __future__ import annotations

import base64
import logging
from xml.sax.saxutils import escape, quoteattr

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import SHARED_SERVER, scaled
from tests.fuzz.test_scram import messages
from tests.support.clients import StreamClient
from xmpp_server.server import Server

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
SASL2 = "urn:xmpp:sasl:2"
STREAM_ERROR = "{http://etherx.jabber.org/streams}error"
MECHANISMS = st.sampled_from(["SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN", "SCRAM-SHA-1-PLUS",
                              "X-OAUTH2", "", "scram-sha-1"])


def payloads() -> st.SearchStrategy[str]:
    """Mostly base64 of SCRAM-like or arbitrary bytes; sometimes not base64 at all."""
    return st.one_of(
        messages.map(lambda m: base64.b64encode(m.encode()).decode()),
        st.binary(max_size=80).map(lambda b: base64.b64encode(b).decode()),
        st.sampled_from(["", "=", " ", "====", "%%%"]),
        st.text(max_size=20).map(escape),
    )


def clean(text: str) -> str:
    """What XML 1.0 can carry (the parser is tested elsewhere)."""
    return "".join(c for c in text if c in "\t\n" or " " <= c <= "\ud7ff" or "\ue000" <= c <=
                   "\ufffd")


async def exchange(server: Server, framing: str, mechanism: str, first: str,
                   final: str) -> None:
    client = await StreamClient.open(server)
    try:
        await client.open_stream()
        if framing == SASL:
            await client.send(f"<auth xmlns='{SASL}' mechanism={quoteattr(mechanism)}>"
                              f"{clean(first)}</auth>")
        else:
            await client.send(f"<authenticate xmlns='{SASL2}' mechanism={quoteattr(mechanism)}>"
                              f"<initial-response>{clean(first)}</initial-response>"
                              "</authenticate>")
        ns = "{" + framing + "}"
        reply = await client.next(lambda e: True)
        if reply.tag == ns + "challenge":
            await client.send(f"<response xmlns='{framing}'>{clean(final)}</response>")
            reply = await client.next(lambda e: True)
        assert reply.tag == ns + "failure", reply.tag
        assert len(reply) >= 1  # a defined condition
        # the stream goes on: a new exchange can start
        await client.send(f"<abort xmlns='{framing}'/>")
        assert (await client.next(lambda e: True)).tag == ns + "failure"
    finally:
        await client.close()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@settings(suppress_health_check=SHARED_SERVER, max_examples=scaled(40))
@given(st.sampled_from([SASL, SASL2]), MECHANISMS, payloads(), payloads())
@example(SASL, "SCRAM-SHA-1", b64("n,,n=user,r=abc"), b64("c=biws,r=abc,p=AAAA"))
@example(SASL2, "SCRAM-SHA-256", b64("n,,n=user,r=abc"), b64("c=biws,r=x,p=%"))
@example(SASL, "PLAIN", b64("\0user\0pw\0"), "")
async def test_made_up_sasl_gets_a_sasl_failure(fuzz_server: Server,
                                                server_errors: list[logging.LogRecord],
                                                framing: str, mechanism: str, first: str,
                                                final: str) -> None:
    await exchange(fuzz_server, framing, mechanism, first, final)
