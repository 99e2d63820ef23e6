"""The names of everything a cluster keeps in Redis, all under ``xmppd:<domain>:``.

================================  ===============================================================
key                               what it holds
================================  ===============================================================
``nodes``                         hash: node id -> JSON (name, started): the members
``lease:<node>``                  the node's lease: exists while the node renews it (``PX``)
``user:<username>``               hash: resource -> JSON session entry (``directory.Entry``);
                                  written only by the node that owns the session
``node-users:<node>``             set: the users with a session on the node (for its reaping)
``directory``                     pub/sub channel: each change of an entry, as the owner made it
``notices``                       pub/sub channel: state a feature keeps per node changed
                                  (``Host.announce``: a user's blocklist), for the others' caches
``inbox:<node>``                  stream (consumer group ``node``): stanzas for the node's sessions
``room:<jid>``                    the node that holds the group chat room (``rooms.py``)
``reaping:<node>``                the survivor that removes a dead node's traces (``NX PX``)
================================  ===============================================================

A node id is ``<name>/<incarnation>``: the name from ``cluster.node`` (or the host name and
the worker number), the incarnation random per start, so a restarted node never inherits what
its previous run left behind.
"""

from __future__ import annotations


class Keys:
    __slots__ = ("channel", "nodes", "notices", "prefix")

    def __init__(self, domain: str) -> None:
        self.prefix = f"xmppd:{domain}:"
        self.nodes = self.prefix + "nodes"
        self.channel = self.prefix + "directory"
        self.notices = self.prefix + "notices"

    def lease(self, node: str) -> str:
        return f"{self.prefix}lease:{node}"

    def user(self, username: str) -> str:
        return f"{self.prefix}user:{username}"

    def user_pattern(self) -> str:
        return f"{self.prefix}user:*"

    def node_users(self, node: str) -> str:
        return f"{self.prefix}node-users:{node}"

    def inbox(self, node: str) -> str:
        return f"{self.prefix}inbox:{node}"

    def room(self, jid: str) -> str:
        return f"{self.prefix}room:{jid}"

    def reaping(self, node: str) -> str:
        return f"{self.prefix}reaping:{node}"
