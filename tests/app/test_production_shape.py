"""The whole production shape, run as the README deploys it, driven through nginx.

PostgreSQL and Redis of the test's own, localstripe, gunicorn with the shipped config
and 2 workers, 2 `barid worker` processes, and Debian's nginx with the shipped site file
in front (TRUSTED_PROXY_HOPS=1), all with BARID_ENV=production and secrets of their
own, on spare ports on 127.0.0.1 and in tmp_path. Through nginx a shopper registers
(the code read from the mail folder), buys from a local shop with a post card and again
with a bank card (localstripe); the merchant's webhooks arrive and verify with the
`standardwebhooks` package; a clerk accepts a parcel at the counter and anyone tracks
it. A `barid worker` is killed with SIGKILL in the middle of a job and the outbox drains
with every effect once; two clients behind the proxy are rate-limited apart; 20 scrapes
of /metrics never see a counter go down. The RSS of each kind of process is printed
and written to tmp_path/rss.txt (and $BARID_SHAPE_REPORT when set).

Production delivers webhooks only over https to public addresses (app.webhooks.transport
refuses loopback and private ones, whatever the settings). So the test runs in a network
namespace of its own (root only, as in CI): there its loopback carries, besides
127.0.0.1, one public address for the merchant's receiver, which no real host behind it
can answer, and the workers trust the receiver's throw-away certificate
(SSL_CERT_FILE). Nothing of the machine's own network is touched.
"""

from __future__ import annotations

import contextlib
import ctypes
import html.parser
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families
from rq.registry import StartedJobRegistry
from standardwebhooks.webhooks import Webhook

from app.config import ROOT
from payments.localstripe_server import start as start_localstripe
from tests.app.test_nginx import NGINX, _main_conf, render_site
from tests.throwaway import PostgresCluster, RedisServer, free_port

BARID = str(Path(sys.executable).parent / "barid")
# A public address (not private, loopback or reserved), on the loopback of the test's
# own network namespace only: the merchant's server.
MERCHANT_IP = "11.22.33.44"
PASSWORD = "Tigris-lamp-Karrada-2026"
CARD_PIN = "4826"
LOOKUPS_PER_MINUTE = 8
CLONE_NEWNET = 0x40000000

pytestmark = [
    pytest.mark.production_shape,
    # The test's own throw-away certificate in front of nginx.
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
    pytest.mark.skipif(not Path(NGINX).exists(),
                       reason="Debian's nginx is needed (make debs-test installs it)"),
    pytest.mark.skipif(os.geteuid() != 0,
                       reason="a network namespace of its own needs root (as in CI)"),
]

# --- the test's own network ---------------------------------------------------------------


@contextlib.contextmanager
def own_network() -> Iterator[None]:
    """Move this thread (and every process and thread it starts from now) into a new
    network namespace with loopback up and MERCHANT_IP on it; back out at the end."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/self/ns/net") as outer:
        if libc.unshare(CLONE_NEWNET) != 0:
            pytest.fail(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            subprocess.run(["ip", "addr", "add", f"{MERCHANT_IP}/32", "dev", "lo"],
                           check=True)
            yield
        finally:
            if libc.setns(outer.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the machine's network")


# --- processes -----------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_until(check, timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(step)


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert proc.poll() is None, tail(log)
        assert time.monotonic() < deadline, f"nothing on port {port}: {tail(log)}"
        time.sleep(0.1)


def tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


class Shape:
    """The running deployment: its processes, addresses and environment."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.env: dict[str, str] = {}
        self.base = ""
        self.db_url = ""
        self.redis_url = ""

    def start(self, name: str, cmd: list[str], **kw) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, **kw)
        self.procs[name] = proc
        return proc

    def run(self, *args: str, input_: str | None = None, timeout: float = 120) -> str:
        done = subprocess.run(list(args), cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout, input=input_)
        assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
        return done.stdout

    def python(self, script: str, *args: str) -> dict:
        out = self.run(sys.executable, "-c", script, *args)
        return json.loads(out.strip().splitlines()[-1])

    def stop_all(self) -> None:
        began = time.monotonic()
        # Workers first (they would log the rest going away), then the web, then nginx.
        order = sorted(self.procs, key=lambda n: (not n.startswith("worker"),
                                                  n == "nginx"))
        for name in order:
            proc = self.procs[name]
            if proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
        for name in order:
            proc = self.procs[name]
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            print(f"{name} stopped after {time.monotonic() - began:.1f} s", flush=True)


# --- the merchant's webhook receiver ------------------------------------------------------


class Receiver:
    """The merchant's https server on MERCHANT_IP: records every POST and answers 200."""

    def __init__(self, tmp: Path) -> None:
        self.requests: list[dict] = []
        self.cert, key = tmp / "merchant-cert.pem", tmp / "merchant-key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                        "-subj", f"/CN={MERCHANT_IP}", "-addext",
                        f"subjectAltName=IP:{MERCHANT_IP}", "-keyout", str(key),
                        "-out", str(self.cert)], check=True, capture_output=True)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"headers": dict(self.headers.items()),
                                          "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((MERCHANT_IP, 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://{MERCHANT_IP}:{self.server.server_address[1]}/barid-hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def of_type(self, kind: str) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests
                if json.loads(r["body"])["type"] == kind]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- setup scripts, run with the deployment's own environment ----------------------------

# What `barid db upgrade` left behind the models: tables and columns it did not make.
DRIFT = r"""
import json
from sqlalchemy import inspect
from app import create_app
from app.database import Base, get_engine
from app.models_registry import load_all
create_app()
load_all()
found = inspect(get_engine())
tables = set(found.get_table_names())
missing = []
for table in Base.metadata.sorted_tables:
    if table.name not in tables:
        missing.append(table.name)
        continue
    have = {c["name"] for c in found.get_columns(table.name)}
    missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in have]
print(json.dumps({"missing": missing}))
"""

SEED = r"""
import json, sys
from app import create_app
from app.auth.models import Role
from app.auth.services import create_post_office, create_user
from app.database import unit_of_work
from app.webhooks.services import create_endpoint
from payments.rates import add_rate
from shop.models import Category, Merchant, MerchantStatus, Product

args = json.loads(sys.argv[1])
app = create_app()
with app.app_context(), unit_of_work() as db:
    office = create_post_office("KRD01", "مكتب بريد الكرادة", "Karrada Post Office", "IQ-BG")
    clerk = create_user("Karrada Clerk", email="clerk@karrada.post.iq",
                        password=args["password"], roles=[Role.CLERK],
                        post_office_code="KRD01")
    owner = create_user("Lamp Shop Owner", email="owner@lamps.iq",
                        password=args["password"], roles=[Role.MERCHANT])
    shop = Merchant(slug="karrada-lamps", name_ar="مصابيح الكرادة", name_en="Karrada Lamps",
                    country="IQ", currency="IQD", status=MerchantStatus.ACTIVE,
                    owner_id=owner.id, post_office_id=office.id, governorate="IQ-BG")
    shelf = Category(slug="lamps", name_ar="مصابيح", name_en="Lamps")
    db.add_all([shop, shelf])
    db.flush()
    lamp = Product(merchant_id=shop.id, category_id=shelf.id, title_ar="مصباح نحاسي",
                   title_en="Brass lamp", price=20000, stock=20, weight_g=500,
                   hs_code="940520", origin_country="IQ")
    db.add(lamp)
    add_rate("USD", "1310")
    endpoint = create_endpoint(shop.id, args["webhook_url"], event_types=["order.paid"],
                               description="the merchant's shop system")
    db.flush()
    out = {"office_id": office.id, "clerk_id": clerk.id, "merchant_id": shop.id,
           "product_id": lamp.id, "endpoint_secret": endpoint.secret}
print(json.dumps(out))
"""

ISSUE_CARD = r"""
import json, sys
from sqlalchemy import select
from app import create_app
from app.auth.models import User
from app.database import unit_of_work
from payments import cards, services

args = json.loads(sys.argv[1])
app = create_app()
with app.app_context(), unit_of_work() as db:
    shopper = db.scalar(select(User).where(User.email == args["email"]))
    card = cards.issue_card(holder_name=shopper.full_name, national_id="199001234567",
                            mobile="+9647701234567", pin=args["pin"], user_id=shopper.id,
                            clerk_id=args["clerk_id"], office_id=args["office_id"])
    services.receive_cash(office_id=args["office_id"], clerk_id=args["clerk_id"],
                          amount=200000, currency="IQD", reference_kind="post_card",
                          reference_id=str(card.id), purpose="card_topup",
                          idempotency_key=f"shape-topup-{card.id}")
    out = {"card_number": card.number, "user_id": shopper.id}
print(json.dumps(out))
"""


# --- a browser's worth of HTTP ------------------------------------------------------------


class Inputs(html.parser.HTMLParser):
    """name -> value of a page's <input>s (the first of each name), and data-* of forms."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.forms: list[dict[str, str]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name"):
            self.values.setdefault(a["name"], a.get("value", ""))
        if tag == "form":
            self.forms.append(a)


def browser(base: str) -> requests.Session:
    s = requests.Session()
    s.verify = False  # the test's own throw-away certificate
    s.trust_env = False  # no CA bundle or proxy from the environment
    # Flask-WTF checks, over https, that a form comes from the site's own pages.
    s.headers["Referer"] = base + "/"
    return s


def form_of(s: requests.Session, url: str) -> dict[str, str]:
    page = s.get(url, timeout=30)
    assert page.status_code == 200, (url, page.status_code, page.text[:2000])
    return Inputs(page.text).values


def post(s: requests.Session, url: str, data: dict, expect=(302, 303)) -> requests.Response:
    res = s.post(url, data=data, allow_redirects=False, timeout=60)
    assert res.status_code in expect, (url, res.status_code, res.text[:3000])
    return res


def from_address(port: int, path: str, source: str) -> http.client.HTTPResponse:
    """One https request through nginx from the loopback address `source`."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30,
                                       source_address=(source, 0))
    conn.request("GET", path)
    res = conn.getresponse()
    res.read()
    conn.close()
    return res


# --- metrics --------------------------------------------------------------------------------


class Scrapes:
    """Every counter and histogram series of each /metrics scrape."""

    def __init__(self, s: requests.Session, base: str) -> None:
        self.s, self.base = s, base
        self.seen: list[dict[tuple, float]] = []

    def __call__(self) -> None:
        res = self.s.get(f"{self.base}/metrics", timeout=30)
        assert res.status_code == 200, res.text[:1000]
        series: dict[tuple, float] = {}
        for family in text_string_to_metric_families(res.text):
            if family.type not in ("counter", "histogram"):
                continue
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                series[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        self.seen.append(series)

    def decreases(self) -> list[str]:
        found = []
        for n, (before, after) in enumerate(zip(self.seen, self.seen[1:], strict=False)):
            for key, value in before.items():
                if key not in after:
                    found.append(f"scrape {n + 2}: {key} vanished (was {value})")
                elif after[key] < value:
                    found.append(f"scrape {n + 2}: {key} {value} -> {after[key]}")
        return found


# --- the killed worker ----------------------------------------------------------------------


def socket_inodes(pid: int) -> set[str]:
    found = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    found.add(target[8:-1])
    return found


def process_on_port(local_port: int, candidates: list[int]) -> int | None:
    """Which of `candidates` owns the TCP connection from 127.0.0.1:`local_port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == local_port:
            inodes.add(fields[9])
    for pid in candidates:
        if socket_inodes(pid) & inodes:
            return pid
    return None


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


# --- the deployment -------------------------------------------------------------------------


@pytest.fixture()
def shape(tmp_path) -> Iterator[Shape]:
    """Everything started in the test's own network; all stopped at the end, whatever
    happened."""
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        stack.enter_context(own_network())
        deployment = Shape(tmp_path)
        receiver = Receiver(tmp_path)
        stack.callback(receiver.stop)
        deployment.receiver = receiver  # type: ignore[attr-defined]

        pg = PostgresCluster().start()
        stack.callback(pg.remove)
        deployment.db_url = pg.create_database("barid")
        redis_server = RedisServer().start()
        stack.callback(redis_server.kill)
        deployment.redis_url = redis_server.url()

        localstripe = start_localstripe(state_dir=str(tmp_path))
        stack.callback(localstripe.stop)
        deployment.localstripe = localstripe  # type: ignore[attr-defined]

        https_port, http_port, web_port = free_port(), free_port(), free_port()
        deployment.https_port = https_port  # type: ignore[attr-defined]
        deployment.base = f"https://127.0.0.1:{https_port}"
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        whsec = "whsec_" + uuid.uuid4().hex
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("BARID", "STRIPE", "PROMETHEUS", "GUNICORN"))}
        env.update(
            BARID_ENV="production", PYTHONPATH=str(ROOT),
            SECRET_KEY=os.urandom(32).hex(), PIN_PEPPER=os.urandom(32).hex(),
            STRIPE_SECRET_KEY="sk_test_" + uuid.uuid4().hex,
            STRIPE_PUBLISHABLE_KEY="pk_test_" + uuid.uuid4().hex,
            STRIPE_WEBHOOK_SECRET=whsec, STRIPE_API_BASE=localstripe.url,
            DATABASE_URL=deployment.db_url, REDIS_URL=deployment.redis_url,
            TRUSTED_PROXY_HOPS="1", PUBLIC_BASE_URL=deployment.base,
            MAIL_BACKEND="folder", MAIL_FOLDER=str(tmp_path / "mail"),
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            TRACKING_LOOKUPS_PER_MINUTE=str(LOOKUPS_PER_MINUTE),
            # A job whose worker died is looked for in rq after 3 s, not a minute.
            OUTBOX_STALE_AFTER="3",
            # The merchant's server has the test's own certificate.
            SSL_CERT_FILE=str(receiver.cert),
        )
        deployment.env = env
        stack.callback(deployment.stop_all)

        # Production settings are fit: nothing to refuse.
        deployment.run(BARID, "check", "--deploy")
        upgrade = subprocess.run([BARID, "db", "upgrade"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert upgrade.returncode == 0, upgrade.stderr[-3000:]
        # The migrations make every table and column the models have.
        assert deployment.python(DRIFT)["missing"] == []

        deployment.start("gunicorn", [
            sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy/gunicorn.conf.py"),
            "-w", "2", "--bind", f"127.0.0.1:{web_port}", "app.wsgi:app"])
        for n in (1, 2):
            deployment.start(f"worker{n}", [BARID, "worker"])
        # localstripe tells the app about payments as Stripe does: signed events.
        localstripe.register_webhook(f"http://127.0.0.1:{web_port}/payments/stripe/webhook",
                                     whsec, name="barid")

        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        site = tmp_path / "barid.conf"
        site.write_text(render_site(
            BARID_SERVER_NAME="127.0.0.1", BARID_HTTPS_LISTEN=f"127.0.0.1:{https_port}",
            BARID_HTTP_LISTEN=f"127.0.0.1:{http_port}", BARID_UPSTREAM=f"127.0.0.1:{web_port}",
            BARID_CODE_ROOT=str(ROOT), BARID_TLS_CERTIFICATE=str(cert),
            BARID_MEDIA_ROOT=str(tmp_path / "media"),
            BARID_TLS_CERTIFICATE_KEY=str(key), BARID_ACCESS_LOG=str(tmp_path / "access.log")))
        conf = tmp_path / "nginx.conf"
        conf.write_text(_main_conf(tmp_path, site))
        deployment.start("nginx", [NGINX, "-p", str(tmp_path), "-c", str(conf),
                                   "-g", "daemon off;"])
        wait_for_port(https_port, deployment.procs["nginx"], tmp_path / "nginx.log", 15)
        wait_for_port(web_port, deployment.procs["gunicorn"], tmp_path / "gunicorn.log", 90)
        print(f"\n[{time.monotonic() - started:6.1f} s] processes started", flush=True)
        yield deployment


# --- the test -------------------------------------------------------------------------------


def test_the_production_shape_through_nginx(shape, tmp_path):
    t0 = time.monotonic()

    def lap(what: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {what}", flush=True)

    base, receiver = shape.base, shape.receiver
    admin = psycopg.connect(shape.db_url, autocommit=True)
    rq_conn = redis.Redis.from_url(shape.redis_url)

    def order_status(order_id: int) -> str:
        return admin.execute("SELECT status FROM shop_orders WHERE id = %s",
                             (order_id,)).fetchone()[0]

    def pending_jobs() -> int:
        return admin.execute("SELECT count(*) FROM outbox_jobs WHERE state = 'pending'"
                             ).fetchone()[0]

    ready = browser(base).get(f"{base}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    seed = shape.python(SEED, json.dumps({"password": PASSWORD,
                                          "webhook_url": receiver.url}))
    scrape = Scrapes(browser(base), base)
    scrape()
    lap("deployment up, merchant seeded")

    # --- a shopper registers; the code comes by message (a worker's job) -------------
    shopper = browser(base)
    email = "zainab.ali@example.iq"
    page = form_of(shopper, f"{base}/register")
    res = post(shopper, f"{base}/register", {
        "csrf_token": page["csrf_token"], "full_name": "زينب علي", "identifier": email,
        "password": PASSWORD, "password_confirm": PASSWORD})
    assert res.headers["Location"].endswith("/register/confirm")

    def code_sent() -> str | None:
        for f in sorted((tmp_path / "mail").glob("*.json")):
            message = json.loads(f.read_text())
            if message["email"] == email:
                return re.search(r"\b(\d{6})\b", message["body"]).group(1)
        return None

    code = wait_until(code_sent, 30, "the registration code by message")
    page = form_of(shopper, f"{base}/register/confirm")
    post(shopper, f"{base}/register/confirm", {"csrf_token": page["csrf_token"],
                                               "code": code})
    assert shopper.get(f"{base}/account", timeout=30).status_code == 200
    scrape()
    lap("shopper registered")

    card = shape.python(ISSUE_CARD, json.dumps({
        "email": email, "pin": CARD_PIN, "clerk_id": seed["clerk_id"],
        "office_id": seed["office_id"]}))
    pickup = {"method": "pickup", "office_id": str(seed["office_id"]),
              "recipient_name": "زينب علي", "phone": "07701234567"}

    def buy(payment: dict) -> requests.Response:
        product = form_of(shopper, f"{base}/shop/p/{seed['product_id']}")
        post(shopper, f"{base}/shop/cart/add", {
            "csrf_token": product["csrf_token"], "product_id": seed["product_id"],
            "quantity": "1"})
        quote = form_of(shopper, f"{base}/shop/checkout?" + urllib.parse.urlencode(pickup))
        assert quote.get("digest"), "the checkout page shows a quote"
        return post(shopper, f"{base}/shop/checkout", {
            **pickup, "csrf_token": quote["csrf_token"], "digest": quote["digest"],
            "key": quote["key"], **payment})

    # --- buys from the local shop with the post card -----------------------------------
    res = buy({"payment": "post_card", "card_number": card["card_number"], "pin": CARD_PIN})
    by_post_card = int(re.search(r"/orders/(\d+)", res.headers["Location"]).group(1))
    wait_until(lambda: order_status(by_post_card) == "paid", 45,
               "the post-card order paid by the workers")
    scrape()
    lap("paid by post card")

    # --- the merchant hears of it: a signed webhook that standardwebhooks verifies ----
    wait_until(lambda: receiver.of_type("order.paid"), 30, "the order.paid webhook")
    verifier = Webhook(seed["endpoint_secret"])
    for r in receiver.requests:
        verified = verifier.verify(r["body"], r["headers"])
        assert verified["type"] == "order.paid"
    assert receiver.of_type("order.paid")[0]["data"]["order_id"] == by_post_card
    scrape()
    lap("merchant's webhook verified")

    # --- and again with a bank card (localstripe), a worker killed in the middle -----
    res = buy({"payment": "stripe"})
    by_bank_card = int(re.search(r"/orders/(\d+)/pay", res.headers["Location"]).group(1))
    page = form_of(shopper, f"{base}/shop/orders/{by_bank_card}/pay")
    res = post(shopper, f"{base}/shop/orders/{by_bank_card}/pay",
               {"csrf_token": page["csrf_token"]})
    pay_url = urllib.parse.urljoin(base, res.headers["Location"])
    card_page = shopper.get(pay_url, timeout=30)
    [card_form] = [f for f in Inputs(card_page.text).forms if f.get("id") == "card-form"]
    # Stripe.js's part in the browser: the card goes to (local)stripe, never to Barid,
    # and the page sends Barid only the payment method's id.
    pm = requests.post(f"{shape.localstripe.url}/v1/payment_methods",
                       auth=(shape.env["STRIPE_SECRET_KEY"], ""), timeout=10,
                       data={"type": "card", "card[number]": "4242424242424242",
                             "card[exp_month]": "12", "card[exp_year]": "2034",
                             "card[cvc]": "123"})
    assert pm.status_code == 200, pm.text

    # Every job so far done; then the order's row is held, so the job that marks the
    # order paid waits on it in a worker's horse: that worker is killed there.
    wait_until(lambda: pending_jobs() == 0, 30, "a quiet outbox")
    holder = psycopg.connect(shape.db_url)
    holder.execute("SELECT id FROM shop_orders WHERE id = %s FOR UPDATE", (by_bank_card,))
    try:
        confirmed = shopper.post(urllib.parse.urljoin(base, card_form["data-confirm"]),
                                 json={"payment_method": pm.json()["id"]},
                                 headers={"X-CSRFToken": card_form["data-csrf"]}, timeout=60)
        assert confirmed.status_code == 200 and confirmed.json()["status"] == "succeeded", \
            confirmed.text
        waiting = wait_until(lambda: admin.execute(
            "SELECT client_port FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = 'barid'").fetchone(), 45, "a job waiting on the order's row")
        workers = {n: shape.procs[n].pid for n in ("worker1", "worker2")}
        owners = {n: process_on_port(waiting[0], [pid, *descendants(pid)])
                  for n, pid in workers.items()}
        found = [(n, pid) for n, pid in owners.items() if pid]
        assert len(found) == 1, (waiting, workers, owners)
        [(victim, horse)] = found
        # The machine loses that worker: it, its scheduler and its horse (rq puts the
        # horse in a process group of its own) die without any cleanup.
        os.killpg(workers[victim], signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(horse, signal.SIGKILL)
        shape.procs[victim].wait(10)
        assert order_status(by_bank_card) == "pending_payment", "the killed job left nothing"
    finally:
        holder.rollback()
        holder.close()
    survivor = "worker2" if victim == "worker1" else "worker1"
    scrape()
    lap("worker killed mid-job")
    # rq counts the killed job as running until its heartbeat runs out (~90 s): let it
    # run out now, as time would.
    for queue in ("default", "webhooks", "low"):
        key = StartedJobRegistry(queue, connection=rq_conn).key
        entries = rq_conn.zrange(key, 0, -1)
        if entries:
            rq_conn.zadd(key, {e: time.time() - 1 for e in entries})
    shopper.get(urllib.parse.urljoin(base, card_form["data-result"]), timeout=30)
    wait_until(lambda: order_status(by_bank_card) == "paid", 60,
               "the bank-card order paid after the worker's death")
    wait_until(lambda: pending_jobs() == 0, 60, "the outbox drained")
    wait_until(lambda: len(receiver.of_type("order.paid")) >= 2, 30,
               "the second order.paid webhook")
    # Stripe's news came as a signed event from localstripe, stored once.
    assert admin.execute("SELECT count(*) FROM stripe_events "
                         "WHERE type = 'payment_intent.succeeded'").fetchone()[0] == 1
    scrape()
    lap("outbox drained after the kill")

    # --- a clerk accepts a parcel at the counter; anyone tracks it ---------------------
    clerk = browser(base)
    page = form_of(clerk, f"{base}/login")
    post(clerk, f"{base}/login", {"csrf_token": page["csrf_token"],
                                  "identifier": "clerk@karrada.post.iq",
                                  "password": PASSWORD})
    page = form_of(clerk, f"{base}/backoffice/parcels/accept")
    res = post(clerk, f"{base}/backoffice/parcels/accept", {
        **{k: v for k, v in page.items() if k in ("csrf_token", "acceptance_key")},
        "service": "parcel", "direction": "domestic",
        "sender_name": "أحمد الكاظمي", "sender_phone": "07701234567",
        "sender_governorate": "IQ-BG", "sender_district": "الكرادة", "sender_landmark": "",
        "recipient_name": "فاطمة الموسوي", "recipient_phone": "07801234567",
        "recipient_governorate": "IQ-BA", "recipient_district": "العشار",
        "recipient_landmark": "قرب سوق حنا الشيخ", "weight_grams": "1500",
        "length_cm": "20", "width_cm": "10", "height_cm": "10", "payment_method": "cash"})
    number = re.search(r"/backoffice/parcels/([A-Z]{2}\d{9}[A-Z]{2})",
                       res.headers["Location"]).group(1)
    scrape()
    lap("parcel accepted")
    public = browser(base)
    tracked = public.get(f"{base}/track/{number}", timeout=30)
    assert tracked.status_code == 200 and number in tracked.text
    api = public.get(f"{base}/api/v1/tracking/{number}", timeout=30)
    assert api.status_code == 200 and api.json()["tracking_number"] == number, api.text
    scrape()
    lap("parcel tracked")

    # --- two clients behind the proxy are counted apart ----------------------------------
    port = shape.https_port
    first = [from_address(port, f"/api/v1/tracking/{number}", "127.0.0.2").status
             for _ in range(LOOKUPS_PER_MINUTE + 1)]
    assert first == [200] * LOOKUPS_PER_MINUTE + [429], first
    scrape()
    lap("first client limited")
    assert from_address(port, f"/track/{number}", "127.0.0.3").status == 200, \
        "another client is not limited by the first one's lookups"
    assert from_address(port, f"/api/v1/tracking/{number}", "127.0.0.2").status == 429
    scrape()
    lap("second client not limited")

    # --- every effect once -----------------------------------------------------------------
    paid_events = admin.execute(
        "SELECT order_id, count(*) FROM shop_order_events WHERE to_status = 'paid' "
        "GROUP BY order_id ORDER BY order_id").fetchall()
    assert paid_events == [(by_post_card, 1), (by_bank_card, 1)]
    webhooks = [(m["data"]["order_id"], m["id"]) for m in receiver.of_type("order.paid")]
    assert sorted(o for o, _ in webhooks) == [by_post_card, by_bank_card], webhooks
    assert len({i for _, i in webhooks}) == 2
    for r in receiver.requests:
        verifier.verify(r["body"], r["headers"])
    states = dict(admin.execute("SELECT state, count(*) FROM outbox_jobs GROUP BY state"
                                ).fetchall())
    assert set(states) == {"done"}, states
    shape.run(BARID, "ledger", "verify")
    assert len(receiver.requests) == 2, "no message was delivered twice"
    assert "sweeper re-sent" in (tmp_path / f"{survivor}.log").read_text(errors="replace"), \
        "the killed job came back through the sweeper of the worker left"

    # --- /metrics: 20 scrapes, no counter ever went down ------------------------------------
    while len(scrape.seen) < 20:
        assert public.get(f"{base}/shop/", timeout=30).status_code == 200
        scrape()
    assert len(scrape.seen) >= 20
    assert scrape.decreases() == []
    final = scrape.seen[-1]
    assert any(k[0].startswith("barid_jobs") for k in final), sorted(final)[:20]

    # --- what each process holds ---------------------------------------------------------------
    nginx = shape.procs["nginx"].pid
    gunicorn = shape.procs["gunicorn"].pid
    web_workers = children(gunicorn)
    assert len(web_workers) == 2
    lines = [f"nginx master {rss_kib(nginx)} KiB"]
    lines += [f"nginx worker {rss_kib(p)} KiB" for p in children(nginx)]
    lines += [f"gunicorn master {rss_kib(gunicorn)} KiB"]
    lines += [f"gunicorn worker {rss_kib(p)} KiB" for p in web_workers]
    lines += [f"barid worker {rss_kib(shape.procs[survivor].pid)} KiB"]
    lines += [f"test took {time.monotonic() - t0:.1f} s after the start of the processes"]
    report = "\n".join(lines)
    print("\nRSS after the production-shape test:\n" + report)
    (tmp_path / "rss.txt").write_text(report + "\n")
    if os.environ.get("BARID_SHAPE_REPORT"):
        Path(os.environ["BARID_SHAPE_REPORT"]).write_text(report + "\n")
    admin.close()
    rq_conn.close()
