"""The shipped nginx configuration, run by Debian's nginx in front of the app.

deploy/nginx/barid.conf is a template; this test fills its ${BARID_...} names the way
the file's header tells an operator to (spare ports on 127.0.0.1, a throw-away
certificate, the checkout as the code root) and runs nginx without root's places: its
own prefix, pid file, logs and temp folders under tmp_path.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import string
import subprocess
import time
from pathlib import Path

import pytest

from app import behind_proxies
from app.config import ROOT

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = ROOT / "deploy" / "nginx" / "barid.conf"
pytestmark = pytest.mark.skipif(not Path(NGINX).exists(),
                                reason="Debian's nginx is needed (make debs-test installs it)")


def spare_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render_site(**values: str) -> str:
    """The shipped site file with its placeholders filled in; every one must be."""
    text = string.Template(TEMPLATE.read_text()).safe_substitute(values)
    # The header's comments name the placeholders too; the directives must have none left.
    directives = "\n".join(line for line in text.splitlines()
                           if not line.lstrip().startswith("#"))
    assert "${BARID_" not in directives, re.findall(r"\$\{BARID_\w+\}", directives)
    return text


def _main_conf(tmp: Path, site: Path) -> str:
    # As root, nginx's workers would become `nobody`, who cannot read tmp_path.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temps = "\n".join(f"  {kind}_temp_path {tmp}/{kind};"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"{user}worker_processes 1;\npid {tmp}/nginx.pid;\n"
            f"error_log {tmp}/error.log warn;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n  include /etc/nginx/mime.types;\n{temps}\n  include {site};\n}}\n")


@pytest.fixture()
def nginx(tmp_path):
    """`nginx(upstream) -> (https_port, http_port, access_log)`: the shipped config in
    front of `upstream` (host:port), stopped when the test ends."""
    started: list[subprocess.Popen] = []

    def start(upstream: str, media_root: Path | None = None) -> tuple[int, int, Path]:
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        https_port, http_port = spare_port(), spare_port()
        log = tmp_path / "access.log"
        site = tmp_path / "barid.conf"
        site.write_text(render_site(
            BARID_SERVER_NAME="127.0.0.1", BARID_HTTPS_LISTEN=f"127.0.0.1:{https_port}",
            BARID_HTTP_LISTEN=f"127.0.0.1:{http_port}", BARID_UPSTREAM=upstream,
            BARID_CODE_ROOT=str(ROOT), BARID_TLS_CERTIFICATE=str(cert),
            BARID_MEDIA_ROOT=str(media_root or tmp_path / "media"),
            BARID_TLS_CERTIFICATE_KEY=str(key), BARID_ACCESS_LOG=str(log)))
        conf = tmp_path / "nginx.conf"
        conf.write_text(_main_conf(tmp_path, site))
        checked = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf),
                                 "-g", "daemon off;"], stderr=subprocess.PIPE)
        started.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", https_port)) == 0:
                    return https_port, http_port, log
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        raise AssertionError("nginx did not start listening")

    yield start
    for proc in started:
        proc.send_signal(signal.SIGQUIT)  # graceful stop
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _request(port: int, method: str, path: str, *, body: bytes | None = None,
             headers: dict[str, str] | None = None, source: str = "127.0.0.1",
             tls: bool = True) -> http.client.HTTPResponse:
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the test's own throw-away certificate
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, context=ctx, timeout=10, source_address=(source, 0))
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                          source_address=(source, 0))
    conn.request(method, path, body=body, headers=headers or {})
    res = conn.getresponse()
    res.body = res.read()  # type: ignore[attr-defined]
    conn.close()
    return res


def _log_lines(log: Path, path: str) -> list[str]:
    # nginx writes the access line after answering: give it a moment.
    for _ in range(50):
        lines = [line for line in log.read_text().splitlines() if f" {path} " in line]
        if lines:
            return lines
        time.sleep(0.02)
    return []


def test_nginx_with_the_shipped_config_in_front_of_the_app(app, serve, nginx, monkeypatch):
    # Behind this one proxy, as deploy/gunicorn.conf.py runs it: TRUSTED_PROXY_HOPS=1.
    monkeypatch.setattr(app, "wsgi_app", behind_proxies(app.wsgi_app, 1))
    upstream = serve(app).removeprefix("http://")
    port, plain_port, log = nginx(upstream)

    # Static files come from the packages' folders through nginx, no worker involved.
    for url, file in [("/static/barid.css", ROOT / "app/static/barid.css"),
                      ("/static/tracking/scan.js", ROOT / "tracking/static/scan.js"),
                      ("/shop/static/shop.css", ROOT / "shop/static/shop.css"),
                      ("/payments/payments-static/card.js", ROOT / "payments/static/card.js")]:
        res = _request(port, "GET", url)
        assert res.status == 200, url
        assert res.body == file.read_bytes()  # type: ignore[attr-defined]
        assert "max-age=604800" in res.getheader("Cache-Control", "")
        [line] = _log_lines(log, url)
        assert line.endswith("urt=-"), line  # answered without the upstream

    # nginx's request id reaches the app, which answers with it.
    res = _request(port, "GET", "/livez")
    assert res.status == 200
    [line] = _log_lines(log, "/livez")
    assert f"rid={res.getheader('X-Request-ID')} " in line

    # The app sees the client's scheme: its external URLs are https.
    res = _request(port, "GET", "/api/v1/openapi.json")
    assert b'"url": "https://127.0.0.1:' in res.body.replace(b'":"', b'": "')  # type: ignore[attr-defined]

    # A body over the limit is refused by nginx before it reaches the app...
    big = b"x" * (2 * 1024 * 1024 + 1)
    res = _request(port, "POST", "/login", body=big,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert res.status == 413
    [line] = _log_lines(log, "/login")
    assert line.endswith("urt=-"), line
    # ...and by the app itself when something reaches it without nginx.
    direct = _request(int(upstream.rsplit(":", 1)[1]), "POST", "/login", body=big,
                      headers={"Content-Type": "application/x-www-form-urlencoded"},
                      tls=False)
    assert direct.status == 413

    # /metrics: from this host yes, from any other address no.
    assert _request(port, "GET", "/metrics").status == 200
    assert _request(port, "GET", "/metrics", source="127.0.0.2").status == 403
    assert _request(port, "GET", "/livez", source="127.0.0.2").status == 200

    # Plain HTTP is sent to HTTPS.
    res = _request(plain_port, "GET", "/track", tls=False)
    assert res.status == 301
    assert res.getheader("Location") == "https://127.0.0.1/track"


def test_nginx_serves_product_pictures_from_the_media_folder(app, serve, nginx, tmp_path,
                                                             monkeypatch):
    """Production keeps pictures in MEDIA_ROOT (MEDIA_STORAGE=directory): nginx answers
    /media/ from that folder with the type, a year's cache and nosniff, never the app's
    temporary files; picture uploads may be larger than other requests."""
    from app.storage import DirectoryStorage

    media = tmp_path / "srv-media"
    backend = DirectoryStorage(media, "/media/")
    backend.put("products/7/ab12-zoom.webp", b"RIFF....WEBP", "image/webp")
    backend.put("products/7/ab12-zoom.jpg", b"\xff\xd8\xff", "image/jpeg")
    (media / "products/7/.tmp-half").write_bytes(b"half")
    monkeypatch.setattr(app, "wsgi_app", behind_proxies(app.wsgi_app, 1))
    port, _plain, log = nginx(serve(app).removeprefix("http://"), media_root=media)

    for key, ctype in (("products/7/ab12-zoom.webp", "image/webp"),
                       ("products/7/ab12-zoom.jpg", "image/jpeg")):
        res = _request(port, "GET", backend.url(key))
        assert res.status == 200 and res.body == (media / key).read_bytes()  # type: ignore[attr-defined]
        assert res.getheader("Content-Type") == ctype
        assert res.getheader("Cache-Control") == "public, max-age=31536000, immutable"
        assert res.getheader("X-Content-Type-Options") == "nosniff"
        [line] = _log_lines(log, backend.url(key))
        assert line.endswith("urt=-"), line  # no worker involved
    for path in ("/media/products/7/.tmp-half", "/media/products/7/none.webp",
                 "/media/../deploy/nginx/barid.conf"):
        assert _request(port, "GET", path).status in (400, 404), path

    # A 5 MB picture upload gets through nginx to the app (which asks for a login)...
    body = b"x" * (5 * 1024 * 1024)
    res = _request(port, "POST", "/merchant/products/1/images", body=body,
                   headers={"Content-Type": "application/octet-stream"})
    assert res.status != 413
    [line] = _log_lines(log, "/merchant/products/1/images")
    assert not line.endswith("urt=-"), line
    # ...while one past the upload limit, or 5 MB anywhere else, stops at nginx.
    res = _request(port, "POST", "/api/v1/products/1/images", body=b"x" * (10 * 1024 * 1024),
                   headers={"Content-Type": "application/octet-stream"})
    assert res.status == 413
    assert _request(port, "POST", "/api/v1/products", body=body,
                    headers={"Content-Type": "application/json"}).status == 413
