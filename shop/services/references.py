"""Names the order code shares: what payments call an order, and public numbers.

Checkout, buy for me and the order state machine all need these; they live here, below
all three, so none of them has to import another for a constant.
"""

from __future__ import annotations

import secrets

# The payments reference kind and purpose of an order: payments knows an order only as
# ("shop_order", "<order id>").
ORDER_KIND = "shop_order"


def new_number(prefix: str) -> str:
    """A public reference such as BR48213907: not a row count, not guessable in order."""
    return f"{prefix}{secrets.randbelow(10**8):08d}"
