"""XEP-0363: HTTP File Upload — the slot service, a component on ``upload.<domain>``.

A local user asks the component for a slot (§4) and gets a PUT URL and a GET URL. Both name a
random id and the file name; the PUT URL also carries its expiry and an HMAC over the slot
(id, name, size, type, expiry), so it cannot be guessed, extended or reused for another path.
The HTTP half (``web_bridge/upload.py``) checks the PUT against the slot, stores the file under
``<data_dir>/uploads/files/<id>`` and serves it back. The HMAC key is kept in
``<data_dir>/uploads/secret``, so slots handed out survive a restart.

Limits (§5): ``upload.max_size`` per file (not-acceptable + <file-too-large/>), ``upload.quota``
bytes per user (resource-constraint). A task owned by this module deletes slots never used and
files older than ``upload.retention`` every ``upload.cleanup_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from storage.uploads import Upload
from xmpp_server import namespaces as ns
from xmpp_server.errors import StanzaError
from xmpp_server.modules.base import Module
from xmpp_server.numbers import stanza_int
from xmpp_server.stanza import Stanza, element, iq_result, sub

if TYPE_CHECKING:
    from xmpp_server.host import Host
    from xmpp_server.modules.disco import DiscoReply

log = logging.getLogger(__name__)

_UP = "{" + ns.HTTP_UPLOAD + "}"
_INFO = "{" + ns.DISCO_INFO + "}query"
_ITEMS = "{" + ns.DISCO_ITEMS + "}query"
NAME = "HTTP File Upload"
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{32}")
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
MAX_FILENAME = 255


class HttpUpload(Module):
    name = "http_upload"
    xeps = (363,)

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self.config = host.config.upload
        self.domain = self.config.domain
        root = Path(host.config.server.data_dir) / "uploads"
        self.files = root / "files"
        self.tmp = root / "tmp"
        self._secret_file = root / "secret"
        self.secret = b""
        http = host.config.http
        # Where PUT and GET URLs point; the HTTP service sets the port it really got.
        self.base_url = http.public_url or f"http://{host.domain}:{http.port}"
        self._sweeper: asyncio.Task[None] | None = None

    def setup(self) -> None:
        self.host.router.components[self.domain] = self.handle
        self.on("disco-items/host", self.disco_item)
        self.on("user-deleting", self.forget)

    def teardown(self) -> None:
        if self.host.router.components.get(self.domain) == self.handle:
            del self.host.router.components[self.domain]
        super().teardown()

    async def start(self) -> None:
        self.files.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.secret = _load_secret(self._secret_file)
        http = self.host.config.http
        if not http.enabled and not http.public_url:
            log.warning("http_upload: http is disabled and http.public_url is empty: "
                        "the upload URLs handed out lead nowhere")
        self._sweeper = asyncio.get_running_loop().create_task(
            self._sweep_forever(), name="upload-cleanup")

    async def stop(self) -> None:
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)

    # -- the component ------------------------------------------------------------------------

    async def handle(self, stanza: Stanza) -> None:
        child = stanza.child
        if stanza.kind != "iq":
            if stanza.kind == "message" and stanza.type not in ("error", "groupchat"):
                raise StanzaError("service-unavailable")
            return  # presence and the rest: nothing to do
        if stanza.type not in ("get", "set"):
            return
        tag = child.tag if child is not None else None
        if stanza.type == "get" and tag == _UP + "request":
            await self.request_slot(stanza)
        elif stanza.type == "get" and tag in (_INFO, _ITEMS):
            await self.disco(stanza)
        else:
            raise StanzaError("service-unavailable")

    async def disco(self, stanza: Stanza) -> None:
        """XEP-0363 §3: the service's identity, feature and maximum file size (XEP-0128)."""
        child = stanza.child
        assert child is not None
        if child.get("node"):
            raise StanzaError("item-not-found")
        query = element(child.tag)
        if child.tag == _INFO:
            sub(query, "identity", category="store", type="file", name=NAME)
            for var in (ns.DISCO_INFO, ns.DISCO_ITEMS, ns.HTTP_UPLOAD):
                sub(query, "feature", var=var)
            form = sub(query, "{" + ns.DATA_FORMS + "}x", type="result")
            for var, value in (("FORM_TYPE", ns.HTTP_UPLOAD),
                               ("max-file-size", str(self.config.max_size))):
                field = sub(form, "field", var=var, type="hidden" if var == "FORM_TYPE" else None)
                sub(field, "value", value)
        await self.host.router.reply(stanza, iq_result(stanza, query))

    def disco_item(self, reply: DiscoReply) -> None:
        reply.item(self.domain, NAME)

    async def request_slot(self, stanza: Stanza) -> None:
        """§4: a slot for one file, for local users only."""
        frm = stanza.frm
        if frm is None or frm.local is None or frm.domain != self.host.domain:
            raise StanzaError("forbidden", "only users of this server may upload")
        request = stanza.child
        assert request is not None
        filename = _filename(request.get("filename"))
        size = _size(request.get("size"))
        content_type = _content_type(request.get("content-type"))
        limit = self.config.max_size
        if size > limit:
            too_large = element(_UP + "file-too-large")
            sub(too_large, "max-file-size", str(limit))
            raise StanzaError("not-acceptable",
                              f"File too large. The maximum file size is {limit} bytes",
                              app_element=too_large)
        now = datetime.now(UTC)
        upload = Upload(secrets.token_urlsafe(24), frm.local, filename, size, content_type,
                        now, now + timedelta(seconds=self.config.slot_expiry))
        if not await self.host.storage.uploads.reserve(upload, self.config.quota):
            raise StanzaError("resource-constraint",
                              f"Quota reached: you may keep {self.config.quota} bytes of files")
        slot = element(_UP + "slot")
        sub(slot, "put", url=self.put_url(upload))
        sub(slot, "get", url=self.get_url(upload))
        await self.host.router.reply(stanza, iq_result(stanza, slot))

    # -- URLs and files (used by the HTTP side) -----------------------------------------------

    def path(self, upload: Upload) -> str:
        return f"/upload/{upload.id}/{quote(upload.filename, safe='')}"

    def get_url(self, upload: Upload) -> str:
        return self.base_url + self.path(upload)

    def put_url(self, upload: Upload) -> str:
        expires = int(upload.expires_at.timestamp())
        return f"{self.get_url(upload)}?e={expires}&s={self.signature(upload, expires)}"

    def signature(self, upload: Upload, expires: int) -> str:
        """HMAC-SHA256 over everything the PUT must match; URL-safe base64."""
        message = "\0".join((upload.id, upload.filename, str(upload.size),
                             upload.content_type, str(expires))).encode()
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def file(self, upload_id: str) -> Path:
        return self.files / upload_id

    def kept_until(self, upload: Upload) -> float | None:
        """When a stored file expires (epoch seconds); None: never."""
        if upload.stored_at is None or not self.config.retention:
            return None
        return upload.stored_at.timestamp() + self.config.retention

    # -- cleanup ------------------------------------------------------------------------------

    async def cleanup(self, now: float | None = None) -> int:
        """Delete unused expired slots and files past retention; returns how many."""
        when = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
        retention = self.config.retention
        before = when - timedelta(seconds=retention) if retention else None
        repo = self.host.storage.uploads
        removed = 0
        while True:
            ids = await repo.expired(when, before)
            await asyncio.to_thread(_unlink, [self.file(upload_id) for upload_id in ids])
            await repo.delete(ids)
            removed += len(ids)
            if len(ids) < 1000:
                break
        # Temporary files of PUTs cut short by a crash (a live PUT ends within its slot's life).
        stale = when.timestamp() - 2 * self.config.slot_expiry
        await asyncio.to_thread(_unlink, [Path(entry.path) for entry in os.scandir(self.tmp)
                                          if entry.stat().st_mtime < stale])
        return removed

    async def _sweep_forever(self) -> None:
        while True:
            try:
                removed = await self.cleanup()
                if removed:
                    log.info("upload cleanup: deleted %d files and slots", removed)
            except Exception:
                log.exception("upload cleanup failed")
            await asyncio.sleep(self.config.cleanup_interval)

    async def forget(self, username: str) -> None:
        """The account goes (its rows go with it, by cascade): delete its files."""
        ids = await self.host.storage.uploads.of_user(username)
        await asyncio.to_thread(_unlink, [self.file(upload_id) for upload_id in ids])


def _unlink(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _filename(value: str | None) -> str:
    name = (value or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = unicodedata.normalize("NFC", name)
    if (not name or name in (".", "..") or len(name) > MAX_FILENAME
            or any(unicodedata.category(ch)[0] == "C" for ch in name)):
        raise StanzaError("bad-request", "a file name is required (no control characters)")
    return name


def _size(value: str | None) -> int:
    if value is None:
        raise StanzaError("bad-request", "size must be a positive number of bytes")
    return stanza_int(value, "size", 1, 2**63 - 1)


def _content_type(value: str | None) -> str:
    """A bare media type, lowercased; "" when the client named none."""
    if value is None or not value.strip():
        return ""
    media = value.strip().lower()
    if not _MEDIA_TYPE.fullmatch(media):
        raise StanzaError("bad-request", "content-type must be a media type like image/png")
    return media


def _load_secret(path: Path) -> bytes:
    """The HMAC key: made once (readable by the server only), then read at every start."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
        raise RuntimeError(f"{path}: too short to be an upload secret") from None
    secret = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return secret


def is_inline(content_type: str) -> bool:
    """Images a browser may show in place; anything else (SVG included) is an attachment."""
    return content_type.startswith("image/") and content_type != "image/svg+xml"

