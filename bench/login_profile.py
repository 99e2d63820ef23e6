"""What one login costs the server: CPU per login and per logout, and where it goes.

Starts one server in-process on SQLite as ``bench/run.sh`` runs it (plain TCP and PLAIN, the
module set of the shared Prosody configuration), creates the accounts, and has the shared load
generator (``../shared/bench/load/xmpp_load.py``, another process, on another CPU) log them in,
``--rounds`` times. A login is the benchmark's: stream header, SASL PLAIN, stream restart,
bind, roster get, initial presence; after a second the clients close. Each round logs in other
accounts, for the first time since they were registered (the benchmark's run A), or with
``--repeat`` the same ones again (run B, warm caches).

For each round: the server's CPU time per login (from the first connection until every
session's initial presence has been handled), of it the kernel's and the garbage collector's,
the event-loop thread's alone (the rest is the database driver's thread), and the CPU time
per logout (until every session has ended and what it left to do is done). CPU time, unlike a
rate, hardly depends on what else runs on the machine; instruction counts do not at all:

    python bench/login_profile.py --users 200 --rounds 5
    python bench/login_profile.py --users 500 --rounds 4 --profile cprofile
    python bench/login_profile.py --storage-url postgresql+asyncpg://postgres@127.0.0.1/bench
    # instructions per login and logout: the difference of 3 rounds and 1 round, / 200
    for r in 1 3; do valgrind --tool=callgrind --callgrind-out-file=cg.$r \
        $(python3 -c 'import sys; print(sys.executable)') bench/login_profile.py --users 100 \
        --rounds $r --accounts 300 --create-concurrency 1; done; grep summary cg.1 cg.3

``--profile`` profiles the login phases of the rounds after the first, with cProfile on the
thread's CPU clock (or pyinstrument, if installed) and prints the top entries.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xmpp_server.config import load_config  # noqa: E402
from xmpp_server.server import Server  # noqa: E402

SHARED_BENCH = Path(os.environ.get("SHARED_BENCH", ROOT.parent / "shared" / "bench"))
LOAD = SHARED_BENCH / "load" / "xmpp_load.py"
MODULES = "disco,ping,version,time,last,register,roster,presence,messages,offline"
DOMAIN = "bench.test"


class GcClock:
    """Time spent in the garbage collector (its callbacks bracket each collection)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._started
            self.collections[info["generation"]] += 1


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def system_cpu() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


class Profiler:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        # On the thread's CPU clock: time taken by other processes is not counted.
        self.cprofile = cProfile.Profile(time.thread_time) if kind == "cprofile" else None
        self.sampler = None
        if kind == "pyinstrument":
            from pyinstrument import Profiler as Sampler

            self.sampler = Sampler(interval=0.0005, async_mode="disabled")

    def start(self) -> None:
        if self.cprofile is not None:
            self.cprofile.enable()
        elif self.sampler is not None:
            self.sampler.start()

    def stop(self) -> None:
        if self.cprofile is not None:
            self.cprofile.disable()
        elif self.sampler is not None:
            self.sampler.stop()

    def report(self, top: int) -> str:
        if self.cprofile is not None:
            out = io.StringIO()
            stats = pstats.Stats(self.cprofile, stream=out)
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)
            return out.getvalue()
        if self.sampler is not None:
            return str(self.sampler.output_text(unicode=False, color=False, show_all=False))
        return ""


async def wait_for(predicate: Callable[[], bool], gen: asyncio.subprocess.Process | None,
                   timeout: float = 120.0) -> None:
    """Poll until ``predicate()``; fail if the generator ``gen`` exits first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline or (gen is not None and gen.returncode is not None):
            err = await gen.stderr.read() if gen is not None and gen.stderr else b""
            raise RuntimeError(f"the round did not finish: {err.decode()}")
        await asyncio.sleep(0.01)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")}
        env.update({
            "XMPPD_SERVER_DOMAIN": DOMAIN, "XMPPD_SERVER_DATA_DIR": tmp,
            "XMPPD_C2S_PORT": "0", "XMPPD_C2S_DIRECT_TLS_PORT": "0",
            "XMPPD_C2S_REQUIRE_TLS": "false", "XMPPD_C2S_MAX_CONNECTIONS": "20000",
            "XMPPD_HTTP_ENABLED": "false", "XMPPD_S2S_ENABLED": "false",
            "XMPPD_SERVER_LOG_LEVEL": "warning", "XMPPD_MODULES_ENABLED": args.modules,
        })
        if args.storage_url:
            env["XMPPD_STORAGE_URL"] = args.storage_url
        server = Server(load_config(None, env=env))
        await server.start()
        host = server.host
        assert host is not None
        try:
            users = args.users
            started = time.perf_counter()
            sem = asyncio.Semaphore(args.create_concurrency)

            async def create(i: int) -> None:
                async with sem:
                    if not await host.accounts.exists(f"u{i}"):
                        await host.accounts.create(f"u{i}", f"pw{i}")

            accounts = max(args.accounts, users if args.repeat else users * args.rounds)
            await asyncio.gather(*(create(i) for i in range(1, accounts + 1)))
            print(f"{accounts} accounts in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            online = [0]

            def initial_presence(_session: object) -> None:
                online[0] += 1

            host.events.on("initial-presence", initial_presence)
            gc_clock = GcClock()
            profiler = Profiler(args.profile)
            login_cpu, login_thread, login_sys, logout_cpu, rates = [], [], [], [], []
            for rnd in range(args.rounds):
                profile = args.profile != "none" and rnd > 0
                cmd = [sys.executable, str(LOAD), "--port", str(server.c2s_port),
                       "--domain", DOMAIN, "--users", str(users), "--duration", "0",
                       "--idle", "1", "--concurrency", str(args.concurrency),
                       "--user-offset", str(1 if args.repeat else 1 + rnd * users)]
                if args.gen_cpu is not None:
                    cmd = ["taskset", "-c", str(args.gen_cpu), *cmd]
                online[0] = 0
                if profile:
                    profiler.start()
                # The server is idle until the generator connects: its CPU time is the logins'.
                cpu0, thread0, sys0 = process_cpu(), time.thread_time(), system_cpu()
                gc0, gcn0 = gc_clock.seconds, list(gc_clock.collections)
                gen = await asyncio.create_subprocess_exec(
                    *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
                await wait_for(lambda: len(host.sessions) > 0, gen)
                wall0 = time.perf_counter()

                def all_in() -> bool:
                    return online[0] >= users and not any(s._worker for s in host.sessions)

                await wait_for(all_in, gen)
                if profile:
                    profiler.stop()
                cpu1, thread1, wall1 = process_cpu(), time.thread_time(), time.perf_counter()
                sys1 = system_cpu()
                gc_us = (gc_clock.seconds - gc0) / users * 1e6
                gcn = [b - a for a, b in zip(gcn0, gc_clock.collections, strict=True)]
                await wait_for(lambda: len(host.sessions) == 0 and not host._tasks, None)
                await asyncio.sleep(0.05)
                cpu2 = process_cpu()
                _, err = await gen.communicate()
                if gen.returncode:
                    print(err.decode(), file=sys.stderr)
                login_cpu.append((cpu1 - cpu0) / users * 1e6)
                login_thread.append((thread1 - thread0) / users * 1e6)
                login_sys.append((sys1 - sys0) / users * 1e6)
                logout_cpu.append((cpu2 - cpu1) / users * 1e6)
                rates.append(users / (wall1 - wall0))
                print(f"round {rnd + 1}: login {login_cpu[-1]:.0f} us CPU "
                      f"(loop thread {login_thread[-1]:.0f}, kernel {login_sys[-1]:.0f}), "
                      f"gc {gc_us:.0f} us {gcn}, logout {logout_cpu[-1]:.0f} us, "
                      f"{rates[-1]:.0f} logins/s (first bind to last presence)",
                      file=sys.stderr)
            # The first round warms the process up; the median of the others is the figure.
            rest = slice(1, None) if args.rounds > 1 else slice(None)
            print(f"median of rounds {(rest.start or 0) + 1}..: "
                  f"login {statistics.median(login_cpu[rest]):.0f} us CPU/login "
                  f"(loop thread {statistics.median(login_thread[rest]):.0f}, "
                  f"kernel {statistics.median(login_sys[rest]):.0f}), "
                  f"logout {statistics.median(logout_cpu[rest]):.0f} us CPU/logout, "
                  f"{statistics.median(rates[rest]):.0f} logins/s; "
                  f"first round login {login_cpu[0]:.0f} us")
            if args.profile != "none":
                print(profiler.report(args.top))
        finally:
            await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", action="store_true",
                        help="the same users every round (else new ones: their first login)")
    parser.add_argument("--accounts", type=int, default=0,
                        help="create at least this many (equal setup for runs of several sizes)")
    parser.add_argument("--create-concurrency", type=int, default=8,
                        help="accounts created at once (1 under valgrind)")
    parser.add_argument("--modules", default=MODULES)
    parser.add_argument("--storage-url", default="")
    parser.add_argument("--profile", choices=("none", "cprofile", "pyinstrument"),
                        default="none")
    parser.add_argument("--top", type=int, default=40)
    two = (os.cpu_count() or 1) >= 2
    parser.add_argument("--server-cpu", type=int, default=1 if two else None)
    parser.add_argument("--gen-cpu", type=int, default=0 if two else None)
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    if args.server_cpu is not None:
        os.sched_setaffinity(0, {args.server_cpu})
    if not args.no_uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
