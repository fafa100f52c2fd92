"""Where uploaded files (product pictures) are kept, behind one small interface.

`storage()` gives the configured backend; code only calls `put(key, data, content_type)`,
`url(key)` and `delete(key)`, so a bucket can replace the folder without touching it.

- `LocalStorage` (development, MEDIA_STORAGE=local): files under MEDIA_ROOT (the
  instance folder by default), served by this app at /media/<key> with long cache
  headers and the type taken from the key's extension.
- `DirectoryStorage` (production, MEDIA_STORAGE=directory): the same files in
  MEDIA_ROOT, but their URLs start with MEDIA_URL, a prefix nginx serves straight from
  that folder (deploy/nginx/barid.conf), so no worker is busy sending pictures.

Keys are made by Barid's own code (never by a client): lower-case letters, digits and
`/ _ . -`, no `..`. Each file is written to a temporary name and renamed into place, so a
reader never sees half a picture. Keys carry a random part, so a file under a key never
changes and may be cached for a year.

Files are not part of a database transaction. `track_written`/`track_deleted` tie them
to the session's: a file written for a transaction that rolls back is removed, and a
file whose row is deleted is removed only once that deletion commits.
"""

from __future__ import annotations

import mimetypes
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, send_from_directory, url_for
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from app.config import INSTANCE_DIR
from app.settings import Setting, load_settings

KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$")
# A year: a key's content never changes (keys carry a random part).
CACHE_SECONDS = 365 * 24 * 3600
CONTENT_TYPES = {".webp": "image/webp", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                 ".png": "image/png", ".svg": "image/svg+xml"}


def _production(cfg: dict[str, Any]) -> bool:
    return cfg.get("BARID_ENV") == "production"


SETTINGS: tuple[Setting, ...] = (
    Setting("MEDIA_STORAGE", computed=lambda c: "directory" if _production(c) else "local",
            doc="local (files under MEDIA_ROOT served by the app at /media/) or directory "
                "(the same files, served by nginx under MEDIA_URL); directory in production"),
    Setting("MEDIA_ROOT", default=str(INSTANCE_DIR / "media"),
            doc="the folder uploaded pictures are written to (nginx's alias for MEDIA_URL)"),
    Setting("MEDIA_URL", default="/media/",
            doc="URL prefix of the files in MEDIA_ROOT when MEDIA_STORAGE=directory "
                "(a path on this site, or https://another.host/prefix/)"),
)


class StorageError(ValueError):
    """A key that Barid's own code should never have made."""


def check_key(key: str) -> str:
    """`key` if it is a safe relative name; raises StorageError otherwise."""
    if not KEY_RE.match(key) or ".." in key or len(key) > 300:
        raise StorageError(f"not a storage key: {key!r}")
    return key


def content_type_of(key: str) -> str:
    suffix = Path(key).suffix.lower()
    return CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or \
        "application/octet-stream"


class Storage(Protocol):
    """What the rest of Barid may do with stored files."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`, replacing nothing half-way (write, then rename)."""

    def url(self, key: str) -> str:
        """The URL a browser fetches `key` from."""

    def delete(self, key: str) -> None:
        """Remove `key`; a key already gone is not an error."""

    def exists(self, key: str) -> bool:
        """Whether `key` is stored."""


class DirectoryStorage:
    """Files in a folder; URLs under `url_prefix` (nginx serves that prefix)."""

    def __init__(self, root: str | os.PathLike[str], url_prefix: str) -> None:
        self.root = Path(root)
        self.url_prefix = url_prefix if url_prefix.endswith("/") else url_prefix + "/"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            # Readable by nginx's own user (mkstemp makes 0600).
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def url(self, key: str) -> str:
        return self.url_prefix + check_key(key)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()


class LocalStorage(DirectoryStorage):
    """Development: the same folder, served by this app's /media/<key> route."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__(root, "/media/")

    def url(self, key: str) -> str:
        return url_for("media.file", key=check_key(key))


def media_origin() -> str | None:
    """The origin pictures come from when MEDIA_URL is on another host (for the CSP's
    img-src), else None (same origin)."""
    parts = urlsplit(str(current_app.config.get("MEDIA_URL") or ""))
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def storage(app: Flask | None = None) -> Storage:
    """The backend MEDIA_STORAGE names, for `app` (default: the current app)."""
    cfg = (app or current_app).config
    kind = cfg["MEDIA_STORAGE"]
    if kind == "directory":
        return DirectoryStorage(cfg["MEDIA_ROOT"], cfg["MEDIA_URL"])
    if kind == "local":
        return LocalStorage(cfg["MEDIA_ROOT"])
    raise StorageError(f"MEDIA_STORAGE={kind!r}: use local or directory")


# -- files tied to the session's transaction ---------------------------------------------

_WRITTEN = "barid.media_written"
_DELETED = "barid.media_deleted"


def track_written(session: Session, backend: Storage, keys: list[str]) -> None:
    """Remember `keys`, just written, so a rollback of `session` removes them again."""
    session.info.setdefault(_WRITTEN, []).append((backend, list(keys)))


def track_deleted(session: Session, backend: Storage, keys: list[str]) -> None:
    """Remove `keys` once `session` commits (a rollback keeps them: the row stays)."""
    session.info.setdefault(_DELETED, []).append((backend, list(keys)))


def _remove(entries: list[tuple[Storage, list[str]]]) -> None:
    for backend, keys in entries:
        for key in keys:
            backend.delete(key)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(_WRITTEN, None)
    _remove(session.info.pop(_DELETED, []))


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    # Only when the whole session rolls back, not a savepoint inside it.
    if previous_transaction.parent is None:
        session.info.pop(_DELETED, None)
        _remove(session.info.pop(_WRITTEN, []))


# -- development: the app serves the files ----------------------------------------------

bp = Blueprint("media", __name__)


@bp.get("/media/<path:key>")
def file(key: str) -> Response:
    """A stored file, with its type from the key and a year's cache (keys never change
    content). 404 for anything that is not a stored key."""
    try:
        check_key(key)
    except StorageError:
        abort(404)
    root = current_app.config["MEDIA_ROOT"]
    response = send_from_directory(root, key, mimetype=content_type_of(key),
                                   max_age=CACHE_SECONDS)
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def init_app(app: Flask) -> None:
    load_settings(app, "app", SETTINGS)
    app.register_blueprint(bp)
    app.add_template_global(lambda key: storage().url(key), "media_url")
