"""The [s2s] keys of federation and the [components] section (XEP-0114)."""

from __future__ import annotations

import pytest

from xmpp_server.config import ConfigError, load_config


def test_s2s_and_components_from_the_environment():
    cfg = load_config(env={
        "XMPPD_S2S_NAMESERVERS": "127.0.0.1:5353, ::1",
        "XMPPD_S2S_BLOCKLIST": "Evil.Example",
        "XMPPD_COMPONENTS_SECRETS": "Bot.Localhost=s3cret",
        "XMPPD_S2S_IDLE_TIMEOUT": "0.5",
    })
    assert cfg.s2s.nameservers == ["127.0.0.1:5353", "[::1]:53"]
    assert cfg.s2s.blocklist == ["evil.example"]
    assert cfg.s2s.idle_timeout == 0.5 and cfg.s2s.direct_tls_port == 5270
    assert cfg.components.secrets == {"bot.localhost": "s3cret"}
    assert cfg.components.port == 5347


@pytest.mark.parametrize(("env", "message"), [
    ({"XMPPD_S2S_NAMESERVERS": "dns.example:53"}, "s2s.nameservers"),
    ({"XMPPD_S2S_IDLE_TIMEOUT": "0"}, "s2s.idle_timeout"),
    ({"XMPPD_COMPONENTS_SECRETS": "conference.localhost=x"},
     "components.secrets: conference.localhost is already served"),
    ({"XMPPD_COMPONENTS_SECRETS": "bot.localhost="}, "components.secrets"),
])
def test_bad_values_name_the_key(env, message):
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert str(info.value).startswith(message)
