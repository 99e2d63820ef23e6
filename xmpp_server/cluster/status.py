"""``xmppd cluster status``: the nodes of the domain, as Redis knows them.

One line per node: its id, whether its lease is held (``live``) or gone (``dead``: a survivor
cleans up after it), when it started, how many resources it holds and how many rooms.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass

from redis.asyncio import Redis

from xmpp_server.cluster.keys import Keys


@dataclass(frozen=True)
class NodeStatus:
    node: str
    live: bool
    started: float | None
    sessions: int
    rooms: int

    def line(self, now: float) -> str:
        age = f"up {_duration(now - self.started)}" if self.started else "up ?"
        return (f"{self.node}\t{'live' if self.live else 'dead'}\t{age}\t"
                f"sessions={self.sessions}\trooms={self.rooms}")


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def read(redis: Redis, domain: str) -> list[NodeStatus]:
    keys = Keys(domain)
    members = {_text(k): json.loads(v) for k, v in (await redis.hgetall(keys.nodes)).items()}
    sessions: Counter[str] = Counter()
    async for key in redis.scan_iter(match=keys.user_pattern(), count=500):
        for raw in (await redis.hgetall(key)).values():
            sessions[json.loads(raw).get("node", "")] += 1
    rooms: Counter[str] = Counter()
    async for key in redis.scan_iter(match=keys.room("*"), count=500):
        holder = await redis.get(key)
        if holder is not None:
            rooms[_text(holder)] += 1
    result = []
    for node in sorted(set(members) | set(sessions) | set(rooms)):
        info = members.get(node, {})
        result.append(NodeStatus(node, bool(await redis.exists(keys.lease(node))),
                                 info.get("started"), sessions[node], rooms[node]))
    return result


def render(nodes: list[NodeStatus]) -> list[str]:
    now = time.time()
    return [node.line(now) for node in nodes]
