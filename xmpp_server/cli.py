"""The ``xmppd`` command line.

    xmppd [serve] [--config FILE]     run the server (no file: the embedded default)
          [--workers N]               N processes sharing the ports (a cluster on Redis)
    xmppd user add|del|passwd|list    manage accounts
    xmppd room list                   list the group chat rooms (XEP-0045), live ones too
    xmppd migrate                     create or upgrade the database schema
    xmppd check-config                validate the configuration and the files it names
    xmppd cert show                   the TLS certificate's path and fingerprints (made if none)
    xmppd cluster status              the nodes of the cluster: lease, sessions, rooms

Exit status: 0 ok, 1 the operation failed, 2 bad usage or bad configuration (one line naming
the key), a port that cannot be listened on or a database that cannot be opened (one line
saying what to do).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence

from xmpp_server.config import Config, ConfigError, load_config
from xmpp_server.listening import ListenError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", metavar="FILE", default=argparse.SUPPRESS,
                        help="TOML configuration file")
    p = argparse.ArgumentParser(prog="xmppd", parents=[common],
                                description="An XMPP server.")
    sub = p.add_subparsers(dest="command")
    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="N processes sharing the ports, one cluster (needs cluster.redis_url)")
    serve.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    sub.add_parser("migrate", parents=[common], help="create or upgrade the database schema")
    sub.add_parser("check-config", parents=[common],
                   help="validate the configuration and the files it names")
    cert = sub.add_parser("cert", parents=[common], help="the server's TLS certificate")
    csub = cert.add_subparsers(dest="action", required=True)
    csub.add_parser("show", parents=[common],
                    help="print its path and fingerprints (making the self-signed one first)")
    user = sub.add_parser("user", parents=[common], help="manage accounts")
    usub = user.add_subparsers(dest="action", required=True)
    for action, text in (("add", "create an account"), ("passwd", "set a new password")):
        a = usub.add_parser(action, parents=[common], help=text)
        a.add_argument("username", help="localpart or user@domain")
        a.add_argument("--password", help="the password (default: read from stdin or prompt)")
    d = usub.add_parser("del", parents=[common], help="delete an account and all its data")
    d.add_argument("username")
    usub.add_parser("list", parents=[common], help="list accounts")
    cluster = sub.add_parser("cluster", parents=[common], help="the nodes of a cluster")
    clsub = cluster.add_subparsers(dest="action", required=True)
    clsub.add_parser("status", parents=[common],
                     help="one line per node: lease, uptime, sessions, rooms")
    room = sub.add_parser("room", parents=[common], help="group chat rooms")
    rsub = room.add_subparsers(dest="action", required=True)
    rsub.add_parser("list", parents=[common],
                    help="list the rooms: stored ones, and live ones with their occupants")
    return p


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Alembic narrates every start at INFO; only its warnings matter here.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.root.level))


def _read_password(given: str | None) -> str:
    if given is not None:
        return given
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise UsageError("the passwords do not match")
    return first


def _localpart(config: Config, raw: str) -> str:
    from xmpp_server.accounts import Accounts
    from xmpp_server.errors import StanzaError

    local, at, domain = raw.partition("@")
    if at and domain.lower() != config.server.domain:
        raise UsageError(f"{raw}: this server serves {config.server.domain}")
    try:
        return Accounts.username(local)
    except StanzaError as exc:
        raise UsageError(f"{raw}: {exc.text}") from None


async def _with_storage(config: Config, fn: Callable[..., Awaitable[int]]) -> int:
    from storage import open_storage
    from xmpp_server.accounts import Accounts

    storage = await open_storage(config.storage.url)
    try:
        return await fn(Accounts(storage, config.auth.scram_iterations))
    finally:
        await storage.close()


def _user(config: Config, args: argparse.Namespace) -> int:
    from xmpp_server.accounts import Accounts
    from xmpp_server.errors import StanzaError

    if args.action == "list":
        async def run_list(accounts: Accounts) -> int:
            for name in await accounts.storage.users.list():
                print(f"{name}@{config.server.domain}")
            return EXIT_OK

        return asyncio.run(_with_storage(config, run_list))
    username = _localpart(config, args.username)
    jid = f"{username}@{config.server.domain}"

    async def run(accounts: Accounts) -> int:
        try:
            if args.action == "add":
                await accounts.create(username, _read_password(args.password))
                print(f"created {jid}")
            elif args.action == "passwd":
                if not await accounts.set_password(username, _read_password(args.password)):
                    print(f"xmppd: no such user: {jid}", file=sys.stderr)
                    return EXIT_FAILED
                print(f"password changed for {jid}")
            elif args.action == "del":
                if not await accounts.delete(username):
                    print(f"xmppd: no such user: {jid}", file=sys.stderr)
                    return EXIT_FAILED
                # Room affiliations name the JID, not the account: a new account of the
                # same name must not inherit them (the server does this on in-band removal).
                await accounts.storage.rooms.forget_jid(jid)
                print(f"deleted {jid}")
        except StanzaError as exc:
            print(f"xmppd: {jid}: {exc.text or exc.condition}", file=sys.stderr)
            return EXIT_FAILED
        return EXIT_OK

    return asyncio.run(_with_storage(config, run))


def _room(config: Config) -> int:
    """``xmppd room list``: one line per room: JID, flags, occupants, owners, name.

    The running server knows every room, persistent or not, and who is in it: it is asked
    on its admin socket. When none answers, the stored rooms are listed, occupants unknown
    (``occupants=?``), with a note on stderr saying why.
    """
    from storage import open_storage
    from web_bridge import admin_socket
    from xmpp_server.modules.muc.listing import RoomSummary, stored_summaries

    async def run() -> int:
        path = admin_socket.path_of(config)
        try:
            answer = await admin_socket.ask(path, "/rooms")
            rooms = [RoomSummary.from_json(room) for room in answer["rooms"]]
        except admin_socket.Unreachable as exc:
            why = str(exc)
        except (KeyError, TypeError, ValueError):
            why = f"the server at {path} did not answer as expected"
        else:
            why = ""
        if why:
            print(f"xmppd: {why}: listing the stored rooms only, occupants unknown",
                  file=sys.stderr)
            storage = await open_storage(config.storage.url)
            try:
                rooms = await stored_summaries(storage.rooms, config.muc.domain, None)
            finally:
                await storage.close()
        for room in rooms:
            print(room.line())
        return EXIT_OK

    return asyncio.run(run())


def _serve(config: Config, workers: int = 1, worker: int | None = None,
           config_path: str | None = None) -> int:
    """Run the server on the event loop ``server.event_loop`` names (uvloop if "auto" and
    installed), until SIGINT or SIGTERM; with ``workers`` > 1, that many (``workers.py``)."""
    from xmpp_server.server import Server

    if workers < 1:
        raise UsageError(f"serve --workers {workers}: give at least 1")
    if workers > 1:
        if not config.cluster.redis_url:
            raise UsageError(f"serve --workers {workers}: workers share their sessions through "
                             "Redis; set cluster.redis_url (with a PostgreSQL storage.url)")
        from xmpp_server.workers import supervise

        return asyncio.run(supervise(config, workers, config_path))
    failure: list[str] = []

    async def serve() -> None:
        loop = type(asyncio.get_running_loop())
        logging.getLogger("xmpp_server").info("event loop: %s.%s", loop.__module__,
                                              loop.__qualname__)
        server = Server(config)
        server.worker = worker
        await server.run()
        if server.failure:
            failure.append(server.failure)

    choice = config.server.event_loop
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise UsageError("server.event_loop is 'uvloop' but uvloop is not installed "
                                 "(pip install 'xmppd[fast]')") from None
        else:
            uvloop.run(serve())
            return _served(failure)
    asyncio.run(serve())
    return _served(failure)


def _served(failure: list[str]) -> int:
    if failure:
        print(f"xmppd: {failure[0]}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _cluster_status(config: Config) -> int:
    """``xmppd cluster status``: what Redis holds about the domain's nodes."""
    if not config.cluster.redis_url:
        raise UsageError("cluster status: no cluster is configured (cluster.redis_url)")
    from redis.asyncio import Redis

    from storage.unavailable import safe_url
    from xmpp_server.cluster.status import read, render

    async def run() -> int:
        redis = Redis.from_url(config.cluster.redis_url, socket_connect_timeout=5)
        try:
            nodes = await read(redis, config.server.domain)
        except Exception as exc:
            raise UsageError(f"cluster.redis_url: cannot reach Redis at "
                             f"{safe_url(config.cluster.redis_url)}: {exc}") from None
        finally:
            await redis.aclose()
        for line in render(nodes) or [f"no node serves {config.server.domain}"]:
            print(line)
        return EXIT_OK

    return asyncio.run(run())


def _migrate(config: Config) -> int:
    from storage import open_storage

    async def run() -> int:
        storage = await open_storage(config.storage.url, migrate=True)
        await storage.close()
        print(f"database at {config.storage.url} is up to date")
        return EXIT_OK

    return asyncio.run(run())


def _check(config: Config) -> int:
    from storage.unavailable import safe_url
    from xmpp_server import preflight
    from xmpp_server.modules import registry

    registry.resolve(config.modules.enabled)
    problems = preflight.problems(config)
    for problem in problems:
        print(f"xmppd: {problem}", file=sys.stderr)
    if problems:
        return EXIT_USAGE
    print(f"configuration ok: domain {config.server.domain}, storage "
          f"{safe_url(config.storage.url)}, c2s {config.c2s.bind}:{config.c2s.port}, "
          f"modules {', '.join(config.modules.enabled)}")
    return EXIT_OK


def _cert_show(config: Config) -> int:
    from xmpp_server import cert_show

    rows = cert_show.rows(config)
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        print(f"{label + ':':<{width}}{value}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(getattr(args, "config", None))
        _setup_logging(config.server.log_level)
        command = args.command or "serve"
        if command == "serve":
            return _serve(config, getattr(args, "workers", 1), getattr(args, "worker", None),
                          getattr(args, "config", None))
        if command == "migrate":
            return _migrate(config)
        if command == "check-config":
            return _check(config)
        if command == "room":
            return _room(config)
        if command == "cert":
            return _cert_show(config)
        if command == "cluster":
            return _cluster_status(config)
        return _user(config, args)
    except (ConfigError, UsageError, ListenError) as exc:
        print(f"xmppd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        from storage import StorageUnavailable  # imported already by whatever opened storage

        if not isinstance(exc, StorageUnavailable):
            raise
        print(f"xmppd: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
