"""The failover drill's people: shoppers paying by post card and clerks taking cash
top-ups, over HTTP, and the check that every acknowledged operation survived.

    python scripts/drill_load.py setup  STATE.json          (app context: make the people)
    python scripts/drill_load.py load   STATE.json ACKS.jsonl BASE_URL STOPFILE
    python scripts/drill_load.py check  STATE.json ACKS.jsonl [KILLED_AT ...]

`setup` and `check` talk to the database through the app (DATABASE_URL etc. from the
environment, as any `barid` command); `load` is an outsider with eight HTTP clients.
An operation is acknowledged when Barid answered it as done: the checkout redirected to
the new order, or the top-up to its payment. Each acknowledgement is one JSON line,
written and flushed before the client's next request, so the log holds every
acknowledgement a person could have seen. `check` prints what the drill reports.
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import requests
from sqlalchemy import func, select

from app import create_app
from app.auth.models import PostOffice, Role
from app.auth.services import create_user
from app.database import db, unit_of_work
from app.events import JobState, OutboxJob
from payments import services as pay
from payments.ledger import verify
from payments.models import Payment
from shop.models import Merchant, Order, Product
from shop.services import catalog
from shop.services.references import ORDER_KIND

CLIENTS = 8  # half shoppers at checkout, half clerks at the counter
PIN = "7305"
PASSWORD = "drill-" + "password-2026"  # the drill's own people, on its own database
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{name}"', html)
    return m.group(1) if m else ""


# --- setup and check: inside the app ------------------------------------------------


def setup(state_path: Path) -> None:
    """Make four shoppers with a post card each, and four clerks' logins; choose one
    product with plenty of stock and a pickup office. Writes STATE.json."""
    app = create_app()
    with app.app_context(), unit_of_work():
        office = db.scalars(select(PostOffice).order_by(PostOffice.id)).first()
        assert office is not None, "seed the demo data first (barid seed-demo)"
        product = db.scalars(select(Product).join(Product.merchant)
                             .where(Merchant.currency == "IQD", Product.price <= 50_000)
                             .order_by(Product.id)).first()
        assert product is not None, "no IQD product in the demo data"
        catalog.set_stock({product.id: 1_000_000})
        tag = secrets.token_hex(3)
        shoppers, clerks = [], []
        for i in range(CLIENTS // 2):
            clerk = create_user(f"Drill clerk {i}", email=f"clerk{i}-{tag}@drill.iq",
                                password=PASSWORD, roles=(Role.CLERK,),
                                post_office_code=office.code)
            shopper = create_user(f"Drill shopper {i}", email=f"shopper{i}-{tag}@drill.iq",
                                  password=PASSWORD, roles=(Role.SHOPPER,))
            card = pay.issue_card_at_counter(
                holder_name=f"Drill shopper {i}", national_id=f"19900000{i:04d}",
                mobile=f"+96477000{i:05d}", pin=PIN, account_email=shopper.email,
                clerk_id=clerk.id, office_id=office.id)
            pay.cash_top_up(card.id, amount=1_000_000, clerk_id=clerk.id,
                            office_id=office.id, idempotency_key=f"drill-seed-{tag}-{i}")
            shoppers.append({"email": shopper.email, "card_id": card.id})
            clerks.append({"email": clerk.email, "card_id": card.id})
        state = {"product_id": product.id, "office_id": office.id,
                 "shoppers": shoppers, "clerks": clerks}
    state_path.write_text(json.dumps(state, indent=2))
    print(f"drill: {len(shoppers)} shoppers and {len(clerks)} clerks, product {product.id}")


def check(state_path: Path, acks_path: Path, killed_at: list[float]) -> int:
    """Every acknowledged order is paid and every acknowledged top-up succeeded; the
    ledger verifies; no card is below zero. Prints the drill's figures; returns the
    number of acknowledged-but-lost operations (the exit status)."""
    acks = [json.loads(line) for line in acks_path.read_text().splitlines() if line.strip()]
    failures = [a for a in acks if a["kind"] == "failed"]
    done = [a for a in acks if a["kind"] in ("order", "topup")]
    lost: list[dict] = []
    app = create_app()
    with app.app_context():
        pending, waited = _wait_for_outbox(deadline=time.monotonic() + 120)
        for a in done:
            # An order's post-card payment is a hold captured by a job: once the outbox
            # has drained it must have succeeded, like a top-up at once.
            if a["kind"] == "order":
                order = db.get(Order, a["id"])
                statuses = [p.status for p in pay.payments_for(ORDER_KIND, str(a["id"]))]
            else:
                p = db.get(Payment, a["id"])
                order, statuses = True, [p.status] if p is not None else []
            if order is None or "succeeded" not in statuses:
                lost.append({**a, "statuses": statuses})
        problems = verify()
        db.remove()
    # Unavailability after each kill: the longest stretch without an acknowledged
    # operation that begins in the 30 s after it. (The first answer after a kill may be
    # a request the old primary had already committed, so "until the next answer"
    # would understate it.)
    times = sorted(a["t"] for a in done)
    unavailable = []
    for kill in killed_at:
        gaps = [later - max(earlier, kill) for earlier, later in pairwise(times)
                if later > kill and earlier < kill + 30]
        unavailable.append(round(max(gaps), 1) if gaps else None)
    print(f"drill: acknowledged operations: {len(done)} "
          f"({sum(a['kind'] == 'order' for a in done)} post-card checkouts, "
          f"{sum(a['kind'] == 'topup' for a in done)} cash top-ups)")
    print(f"drill: acknowledged but lost: {len(lost)}")
    for a in lost[:20]:
        print(f"drill:   LOST {a}")
    print(f"drill: failed requests: {len(failures)}")
    for why, n in Counter(f["why"][:90] for f in failures).most_common(5):
        print(f"drill:   {n} x {why}")
    print(f"drill: seconds of unavailability after each kill: {unavailable}")
    print(f"drill: outbox rows still pending after {waited:.0f} s: {pending}")
    print(f"drill: ledger problems: {len(problems)}")
    for p in problems[:20]:
        print(f"drill:   {p}")
    return len(lost) + len(problems) + pending


def _wait_for_outbox(deadline: float) -> tuple[int, float]:
    """Wait until the workers have run every job staged in the outbox (or the deadline
    passes): how many are still pending, and the seconds waited."""
    start = time.monotonic()
    while True:
        pending = db.scalar(select(func.count()).select_from(OutboxJob)
                            .where(OutboxJob.state == JobState.PENDING)) or 0
        db.remove()
        if pending == 0 or time.monotonic() > deadline:
            return pending, time.monotonic() - start
        time.sleep(1)


# --- load: an outsider over HTTP --------------------------------------------------------


class Client(threading.Thread):
    def __init__(self, base: str, who: dict, role: str, state: dict, log: AckLog,
                 stop: Path) -> None:
        super().__init__(daemon=True)
        self.base, self.who, self.role, self.state = base, who, role, state
        self.log, self.stop = log, stop
        self.http = requests.Session()

    def run(self) -> None:
        logged_in = False
        while not self.stop.exists():
            try:
                if not logged_in:
                    self._login()
                    logged_in = True
                if self.role == "shopper":
                    self._checkout()
                else:
                    self._top_up()
            except Exception as exc:  # any failure is counted and tried again
                self.log.write({"kind": "failed", "role": self.role, "why": repr(exc)[:200]})
                logged_in = False
                self.http = requests.Session()
                time.sleep(0.5)

    def _csrf(self, path: str) -> tuple[str, str]:
        r = self.http.get(self.base + path, timeout=30)
        r.raise_for_status()
        m = CSRF.search(r.text)
        if not m:
            raise RuntimeError(f"no form on {path}")
        return m.group(1), r.text

    def _login(self) -> None:
        token, _ = self._csrf("/login")
        r = self.http.post(self.base + "/login", timeout=30, allow_redirects=False, data={
            "csrf_token": token, "identifier": self.who["email"], "password": PASSWORD})
        if r.status_code not in (302, 303):
            raise RuntimeError(f"login answered {r.status_code}")

    def _checkout(self) -> None:
        s = self.state
        token, _ = self._csrf("/shop/cart")
        r = self.http.post(self.base + "/shop/cart/add", timeout=30, allow_redirects=False,
                           data={"csrf_token": token, "product_id": s["product_id"],
                                 "quantity": 1, "next": "/shop/cart"})
        if r.status_code not in (302, 303):
            raise RuntimeError(f"cart answered {r.status_code}")
        dest = {"method": "pickup", "office_id": s["office_id"],
                "recipient_name": "Drill", "phone": "07701234567"}
        r = self.http.get(self.base + "/shop/checkout", params=dest, timeout=30)
        r.raise_for_status()
        form = {"csrf_token": CSRF.search(r.text).group(1), **dest,
                "digest": _hidden(r.text, "digest"), "key": _hidden(r.text, "key"),
                "payment": "post_card", "card_id": self.who["card_id"], "pin": PIN}
        r = self.http.post(self.base + "/shop/checkout", data=form, timeout=60,
                           allow_redirects=False)
        m = re.search(r"/shop/orders/(\d+)$", r.headers.get("Location", ""))
        if r.status_code in (302, 303) and m:
            self.log.write({"kind": "order", "id": int(m.group(1))})
        elif r.status_code in (302, 303):
            self.log.write({"kind": "refused", "role": self.role,
                            "where": r.headers.get("Location")})
        else:
            raise RuntimeError(f"checkout answered {r.status_code}")

    def _top_up(self) -> None:
        card_id = self.who["card_id"]
        token, html = self._csrf(f"/backoffice/payments/cards/{card_id}")
        r = self.http.post(self.base + f"/backoffice/payments/cards/{card_id}/topup",
                           timeout=60, allow_redirects=False,
                           data={"csrf_token": token, "amount": "1000",
                                 "key": _hidden(html, "key") or secrets.token_hex(8)})
        m = re.search(r"/backoffice/payments/payments/(\d+)$", r.headers.get("Location", ""))
        if r.status_code in (302, 303) and m:
            self.log.write({"kind": "topup", "id": int(m.group(1))})
        elif r.status_code in (302, 303):
            self.log.write({"kind": "refused", "role": self.role})
        else:
            raise RuntimeError(f"top-up answered {r.status_code}")


class AckLog:
    """One JSON line per outcome, flushed at once (an acknowledgement is never only in
    a buffer when the drill looks)."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("a", encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, record: dict) -> None:
        record["t"] = time.time()
        with self.lock:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()


def load(state_path: Path, acks_path: Path, base: str, stop: Path) -> None:
    """Run the eight clients until STOPFILE exists."""
    state = json.loads(state_path.read_text())
    log = AckLog(acks_path)
    clients = [Client(base, who, "shopper", state, log, stop) for who in state["shoppers"]]
    clients += [Client(base, who, "clerk", state, log, stop) for who in state["clerks"]]
    for c in clients:
        c.start()
    for c in clients:
        c.join()


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "setup":
        setup(Path(argv[1]))
        return 0
    if len(argv) == 5 and argv[0] == "load":
        load(Path(argv[1]), Path(argv[2]), argv[3].rstrip("/"), Path(argv[4]))
        return 0
    if len(argv) >= 3 and argv[0] == "check":
        killed = [float(t) for t in argv[3:]]
        return 1 if check(Path(argv[1]), Path(argv[2]), killed) else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
