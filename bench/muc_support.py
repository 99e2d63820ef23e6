"""The servers, meters and report of the MUC benchmark (muc_bench.py): xmppd and Prosody
started on loopback, pinned to a CPU; wall/CPU/percentile helpers; the side-by-side table."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
now = time.perf_counter
CLK = os.sysconf("SC_CLK_TCK")
MUC = "http://jabber.org/protocol/muc"


def cpu_seconds(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except OSError:
        return None


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


class Meter:
    """Wall time and CPU (server, generator, everything else on the machine) over a phase."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.t, self.gen, self.srv, self.busy = now(), self_cpu(), cpu_seconds(pid), busy()

    def done(self) -> dict[str, float | None]:
        wall = now() - self.t
        gen = (self_cpu() - self.gen) / wall * 100
        srv_now = cpu_seconds(self.pid)
        srv = None if srv_now is None or self.srv is None else (srv_now - self.srv) / wall * 100
        b = busy()
        machine = (b[0] - self.busy[0]) / max(1, b[1] - self.busy[1]) * (os.cpu_count() or 1) * 100
        return {"wall": wall, "server_cpu_pct": None if srv is None else round(srv),
                "gen_cpu_pct": round(gen), "other_cpu_pct": round(machine - gen - (srv or 0)),
                "server_cpu_s": None if srv is None else srv * wall / 100}


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 2)


# -- servers ------------------------------------------------------------------------------------

class Server:
    label = ""
    pid: int | None = None

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def pin(self) -> list[str]:
        cpus = self.args.server_cpus
        return ["taskset", "-c", cpus] if cpus and (os.cpu_count() or 1) >= 2 else []

    def wait_port(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.label} is not listening on {port}")

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.proc = None


class Xmppd(Server):
    label = "xmppd"

    def start(self) -> None:
        a = self.args
        self.work = Path(tempfile.mkdtemp(prefix="muc-bench-xmppd-"))
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("XMPPD_")},
               "XMPPD_SERVER_DOMAIN": a.domain, "XMPPD_SERVER_DATA_DIR": str(self.work / "data"),
               "XMPPD_SERVER_LOG_LEVEL": "warning", "XMPPD_C2S_PORT": str(a.xmppd_port),
               "XMPPD_C2S_DIRECT_TLS_PORT": "0", "XMPPD_C2S_REQUIRE_TLS": "false",
               "XMPPD_C2S_MAX_CONNECTIONS": "20000", "XMPPD_HTTP_ENABLED": "false",
               "XMPPD_S2S_ENABLED": "false", "XMPPD_MUC_RATE": "0",
               "PYTHONPATH": str(ROOT)}
        log = open(self.work / "xmppd.log", "wb")  # noqa: SIM115 - closed with the process
        profile = os.environ.get("XMPPD_BENCH_PROFILE")  # a path: run under cProfile
        python = [sys.executable, *(("-m", "cProfile", "-o", profile) if profile else ())]
        self.proc = subprocess.Popen([*self.pin(), *python, "-m", "xmpp_server", "serve"],
                                     cwd=self.work, env=env, stdout=log, stderr=log)
        self.pid = self.proc.pid
        self.port = a.xmppd_port
        self.wait_port(self.port)

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.work, ignore_errors=True)


class Prosody(Server):
    label = "prosody"

    def start(self) -> None:
        a = self.args
        run = Path(os.environ.get("BENCH_RUN_DIR", tempfile.gettempdir() + "/xmppbench"))
        self.run = run / "prosody-muc"
        shutil.rmtree(self.run, ignore_errors=True)
        (self.run / "data").mkdir(parents=True)
        (self.run / "certs").mkdir()
        text = (HERE / "prosody_muc.cfg.lua.in").read_text()
        for key, value in (("RUN", str(self.run)), ("PORT", str(a.prosody_port)),
                           ("DOMAIN", a.domain), ("AUTH", a.prosody_auth),
                           ("NAGLE", a.prosody_nagle)):
            text = text.replace(f"@{key}@", value)
        config = self.run / "prosody.cfg.lua"
        config.write_text(text)
        log = open(self.run / "stdout.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([*self.pin(), "prosody", "--config", str(config), "-F"],
                                     cwd=self.run, stdout=log, stderr=log)
        self.pid = self.proc.pid
        self.port = a.prosody_port
        self.wait_port(self.port)


def round3(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def table(results: list[dict[str, object]]) -> str:
    rows = {(str(r["server"]), str(r["test"]), bool(r.get("archive"))): r for r in results}
    lines = ["| measurement | xmppd | prosody | xmppd / prosody |", "|---|---|---|---|"]

    def line(name: str, key: tuple[str, bool], field: str, better_low: bool = False) -> None:
        x = rows.get(("xmppd", *key))
        p = rows.get(("prosody", *key))
        xv = x.get(field) if x else None
        pv = p.get(field) if p else None
        ratio = ""
        if isinstance(xv, int | float) and isinstance(pv, int | float) and pv:
            ratio = f"{xv / pv:.2f}" + (" (lower is better)" if better_low else "")
        lines.append(f"| {name} | {xv if xv is not None else '-'} | "
                     f"{pv if pv is not None else '-'} | {ratio} |")

    line("join: wall time for the room to fill (s)", ("join", False), "wall_s", True)
    line("join: joins/s", ("join", False), "joins_per_s")
    line("join: p50 join latency (ms)", ("join", False), "join_ms_p50", True)
    line("join: p99 join latency (ms)", ("join", False), "join_ms_p99", True)
    line("fan-out: occupant deliveries/s", ("fanout", False), "deliveries_per_s")
    line("fan-out: messages/s", ("fanout", False), "messages_per_s")
    line("fan-out: p50 reflection latency (ms)", ("fanout", False), "reflect_ms_p50", True)
    line("join: server CPU seconds to fill the room", ("join", False), "server_cpu_s", True)
    line("fan-out: server CPU %", ("fanout", False), "server_cpu_pct")
    line("fan-out: deliveries per server CPU second", ("fanout", False),
         "deliveries_per_server_cpu_s")
    archived = rows.get(("xmppd", "fanout", True))
    if archived:
        lines.append(f"| fan-out, xmppd room archive on: deliveries/s | "
                     f"{archived['deliveries_per_s']} | - | |")
    return "\n".join(lines)
