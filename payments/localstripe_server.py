"""Run localstripe (a fake Stripe for tests and the embedded demo) on 127.0.0.1 only.

localstripe's own command listens on every interface and keeps its state in a fixed
pickle in the system temp folder; here it listens on loopback and keeps its state in
the file given (or nowhere). It is a test tool under the GPL: never used in production.

    python -m payments.localstripe_server --port 8420 --state /tmp/x/localstripe.pickle
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field


def _serve(port: int, state: str | None) -> None:
    # Heavy optional test tools, imported only in the server's own process: the app
    # imports this module without localstripe or aiohttp installed.
    from aiohttp import web
    from localstripe import resources, server
    from localstripe.errors import UserError

    def dump(store) -> None:
        if state:
            with open(state, "wb") as f:
                pickle.dump(dict(store), f, protocol=pickle.HIGHEST_PROTOCOL)

    def load(store) -> None:
        if state and os.path.exists(state):
            with open(state, "rb") as f:
                store.clear()
                dict.update(store, pickle.load(f))  # noqa: S301 (our own state file)

    resources.Store.dump_to_disk = dump
    resources.Store.try_load_from_disk = load
    resources.store.try_load_from_disk()
    _add_disputes(server.app, web, resources, UserError)
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None,
                handle_signals=True)


def _add_disputes(app, web, resources, user_error) -> None:
    """Disputes, which localstripe lacks: `GET /v1/disputes/{id}` as Stripe answers it,
    and a test hook `POST /_config/disputes` (charge, amount, reason, status; or
    `/_config/disputes/{id}` to change one) doing what Stripe's dispute test cards do.
    Kept in memory only: a restarted server knows none."""
    disputes: dict[str, dict] = {}

    async def open_or_change(request):
        data = dict(await request.post())
        known = disputes.get(request.match_info.get("id", ""))
        if known is None:
            charge = resources.Charge._api_retrieve(str(data.get("charge") or ""))
            known = {"id": "dp_" + os.urandom(7).hex(), "object": "dispute",
                     "amount": charge.amount, "currency": charge.currency,
                     "charge": charge.id, "payment_intent": charge.payment_intent,
                     "reason": "fraudulent", "status": "needs_response",
                     "created": int(time.time()), "livemode": False, "metadata": {}}
            disputes[known["id"]] = known
        if data.get("amount"):
            known["amount"] = int(data["amount"])
        for key in ("reason", "status"):
            if data.get(key):
                known[key] = data[key]
        return web.json_response(known)

    def retrieve(request):
        found = disputes.get(request.match_info["id"])
        if found is None:
            raise user_error(404, "Not Found")
        return web.json_response(found)

    app.router.add_post("/_config/disputes", open_or_change)
    app.router.add_post("/_config/disputes/{id}", open_or_change)
    app.router.add_get("/v1/disputes/{id}", retrieve)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalStripe:
    """A running localstripe child process."""

    url: str
    process: subprocess.Popen
    state_dir: str = field(default="")

    def register_webhook(self, url: str, secret: str, name: str = "barid") -> None:
        data = f"url={urllib.parse.quote(url, safe='')}&secret={urllib.parse.quote(secret)}"
        req = urllib.request.Request(  # noqa: S310 (loopback only)
            f"{self.url}/_config/webhooks/{name}", data=data.encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()  # noqa: S310 (loopback only)

    def open_dispute(self, charge: str, **fields: str | int) -> dict:
        """Open a dispute on `charge` as a cardholder's bank would (a test hook)."""
        return self._post("/_config/disputes", {"charge": charge, **fields})

    def change_dispute(self, dispute_id: str, **fields: str | int) -> dict:
        return self._post(f"/_config/disputes/{dispute_id}", fields)

    def _post(self, path: str, fields: dict) -> dict:
        data = urllib.parse.urlencode({k: str(v) for k, v in fields.items()}).encode()
        req = urllib.request.Request(f"{self.url}{path}", data=data,  # noqa: S310
                                     method="POST")
        with urllib.request.urlopen(req, timeout=5) as res:  # noqa: S310 (loopback only)
            return json.loads(res.read())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start(port: int | None = None, *, state_dir: str | None = None,
          timeout: float = 15.0) -> LocalStripe:
    """Start localstripe on 127.0.0.1:`port` (a free one by default) and wait for it."""
    port = port or free_port()
    state_dir = state_dir or tempfile.mkdtemp(prefix="barid-localstripe-")
    state = os.path.join(state_dir, "localstripe.pickle")
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "payments.localstripe_server", "--port", str(port),
         "--state", state],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/js.stripe.com/v3/", timeout=1).read()  # noqa: S310
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"localstripe did not start on {url}") from None
            time.sleep(0.1)
    ls = LocalStripe(url=url, process=proc, state_dir=state_dir)
    atexit.register(ls.stop)
    return ls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", default=None)
    args = parser.parse_args()
    _serve(args.port, args.state)


if __name__ == "__main__":
    main()
