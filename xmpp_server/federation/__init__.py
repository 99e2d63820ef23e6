"""Federation: server-to-server streams (RFC 6120) and external components (XEP-0114).

- ``manager.py``: ``Federation``, the s2s wiring (listeners, links, ``route/remote``, bounces)
- ``s2s_in.py`` / ``s2s_out.py``: the receiving and the initiating side of a stream;
  ``link.py``: the outgoing link of a domain pair (queue, connecting, retries)
- ``stream.py``: what both share, on top of ``stream.session.Session``
- ``auth.py`` (SASL EXTERNAL, XEP-0178), ``certs.py`` (certificate validation),
  ``dialback.py`` (XEP-0220, XEP-0185), ``resolver.py`` (SRV, XEP-0368), ``limits.py``
- ``wire.py``: jabber:client inside, jabber:server / jabber:component:accept on the wire
- ``component.py``: the XEP-0114 listener
"""
