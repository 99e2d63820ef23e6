"""A database that cannot be opened, told in one line: the URL without its password, what went
wrong and what to do (``createdb``, the user and password, whether PostgreSQL runs).

``open_storage`` raises ``StorageUnavailable`` for the failures of its first connection that a
person fixes outside the server: a PostgreSQL database that does not exist, a login refused,
a server not running or not reachable, an SQLite file that cannot be made or is not a database.
Anything else (a bug in a migration) keeps its own exception and traceback.
"""

from __future__ import annotations

import errno
import os
import shlex
import socket
import sqlite3
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

__all__ = ["StorageUnavailable", "explain", "safe_url"]

# PostgreSQL SQLSTATEs (Appendix A of its manual) of a first connection a person must fix.
_NO_DATABASE = "3D000"  # invalid_catalog_name
_LOGIN_REFUSED = ("28000", "28P01")  # invalid_authorization_specification, invalid_password
_NO_PRIVILEGE = "42501"  # insufficient_privilege (cannot create the tables)
_NOT_NOW = ("57P03", "53300")  # cannot_connect_now (starting up), too_many_connections


class StorageUnavailable(Exception):
    """The database cannot be opened. ``str()`` is one line naming ``storage.url`` (without its
    password), the reason and what to do."""


def safe_url(url: str | URL) -> str:
    """``url`` with its password (in the authority or the query) masked."""
    parsed = make_url(url)
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": "***"})
    return parsed.render_as_string(hide_password=True)


def explain(url: str, exc: BaseException) -> StorageUnavailable | None:
    """The one-line error for ``exc`` raised while first connecting to ``url``, or None when
    it is not a failure a person fixes outside the server."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        why = _sqlite(parsed, exc)
    else:
        why = _postgresql(parsed, exc)
    if why is None:
        return None
    return StorageUnavailable(" ".join(f"storage.url {safe_url(parsed)}: {why}".split()))


def _postgresql(url: URL, exc: BaseException) -> str | None:
    query_host = url.query.get("host")  # a Unix socket directory: ?host=/run/postgresql
    host = url.host or (query_host if isinstance(query_host, str) else None) or "localhost"
    where = f"{host}:{url.port or 5432}"
    user = url.username or "(the current system user)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host {host}: {exc.strerror}; check the host in storage.url"
    if isinstance(exc, TimeoutError):
        return (f"no answer from {where}; check that PostgreSQL runs there and that a "
                "firewall lets this machine in")
    if isinstance(exc, OSError):
        if host.startswith("/"):
            where, listens = f"the socket in {host}", "with its socket there"
        else:
            listens = "and listens on TCP there (listen_addresses, port)"
        return f"cannot connect to {where}: {_reason(exc)}; check that PostgreSQL runs {listens}"
    if not isinstance(exc, DBAPIError):
        return None
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    message = str(exc.orig).strip()
    if state == _NO_DATABASE:
        return f"{message}; create it: {_createdb(url)}"
    if state in _LOGIN_REFUSED:
        return (f"PostgreSQL refused the login of {user}: {message}; check the user and "
                "password in storage.url and the server's pg_hba.conf")
    if state == _NO_PRIVILEGE:
        return (f"{message}; {user} must be allowed to create tables in {url.database}, e.g. "
                f"as its owner: ALTER DATABASE {url.database} OWNER TO {url.username}")
    if state in _NOT_NOW:
        return f"{message}; try again in a moment"
    if isinstance(state, str) and state.startswith("08"):  # connection_exception
        return f"{message}; check that PostgreSQL runs at {where}"
    return None


def _reason(exc: OSError) -> str:
    text = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def _createdb(url: URL) -> str:
    args = ["createdb"]
    if url.host:
        args += ["-h", url.host]
    if url.port:
        args += ["-p", str(url.port)]
    if url.username:
        args += ["-U", url.username]
    return shlex.join([*args, url.database or ""])


def _sqlite(url: URL, exc: BaseException) -> str | None:
    path = Path(url.database or "")
    if isinstance(exc, OSError):  # making its directory
        hint = "check server.data_dir or the path in storage.url"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            hint = "let the server's user write there, or change server.data_dir"
        return f"cannot create {exc.filename or path.parent}: {_reason(exc)}; {hint}"
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    if not isinstance(orig, sqlite3.DatabaseError):
        return None
    text = str(orig)
    if isinstance(orig, sqlite3.OperationalError) and (
            "unable to open" in text or "readonly" in text):
        return (f"{text}; check that {path.parent} exists and the server's user may write "
                f"{path.name} and that directory")
    if "not a database" in text:
        return f"{path} is not an SQLite database; point storage.url at another file"
    return None
