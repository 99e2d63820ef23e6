"""XEP-0198 inside a XEP-0388 SASL2 login: <resume/> in <authenticate/>, <enable/> in Bind 2.

Announced as <sm/> in SASL2's <inline/> and as a Bind 2 inline feature (XEP-0386 §3.1). The
answers go where the XEPs put them: <resumed/> or <failed/> in <success/> (XEP-0388 §2.6.1,
the resumed session then skips Bind 2, XEP-0386 §3.2), <enabled/> or <failed/> in <bound/>.
The stanzas a resumed client had not handled follow the new stream features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lxml import etree

from xmpp_server.modules.stream_mgmt.state import SM
from xmpp_server.stream import bind2, sasl2

if TYPE_CHECKING:
    from xmpp_server.modules.stream_mgmt import StreamManagement

_SM = "{" + SM + "}"


def setup(module: StreamManagement) -> None:
    async def resume(arg: tuple[sasl2.Login, etree._Element]) -> bool:
        login, el = arg
        result = await module.take_over(login.session, el)
        if result is None:
            login.ended = True  # a stream error (§4: 'h' too high)
        elif isinstance(result, bytes):
            login.success.append(etree.fromstring(result))  # and Bind 2 goes on
        else:
            login.session, login.resumed = result, True
            login.success.append(etree.fromstring(module.resumed(result)))

            async def replay() -> None:
                await module.replay(result)

            login.after.append(replay)
        return True

    def enable(arg: tuple[sasl2.Login, etree._Element]) -> bool:
        login, el = arg
        if login.bound is not None:
            login.bound.append(etree.fromstring(module.do_enable(login.session, el)))
        return True

    module.on(f"sasl2-inline/{_SM}resume", resume)
    module.on(f"bind2-inline/{_SM}enable", enable)


def advertise(features: etree._Element) -> None:
    """For the stream-features provider, before authentication."""
    inline = sasl2.inline(features)
    if inline is not None:
        etree.SubElement(inline, _SM + "sm", nsmap={None: SM})
        bind2.offer(features, SM)
