"""Which PINs a post card may have: 4 to 6 digits, and not one a thief tries first.

A thief with a found or stolen card gets a handful of tries before the card locks
(see cards.verify_pin). Those tries go to the PINs people choose most, so a card
whose PIN is among them is as good as open. We refuse them when a card is issued
and when its PIN is changed; the holder is told why in plain words and picks again.

Three kinds are refused:

* one digit repeated: 0000, 11111, 999999 ...
* a run of digits going up or down by one: 1234, 4321, 0123, 9876, 12345, 654321 ...
  Wrap-around counts as a run (8901, 9012, 7890, 1098, 2109): after 9 comes 0 both
  on a PIN pad's last row and in people's heads, and the leaked-PIN analyses show
  7890 and 0987 among the commoner choices. The cost is tiny: a handful more of
  10,000 four-digit PINs refused.
* the COMMONEST_PINS below.

Only steps of one make a run: 1357 or 2468 are allowed (a line had to be drawn
somewhere; the list of common PINs catches the most popular of the rest).
"""

from __future__ import annotations

import re
from enum import StrEnum

from flask_babel import lazy_gettext as _l

from app.numbers import ascii_digits
from payments.errors import InvalidPin, WeakPin

PIN_RE = re.compile(r"^[0-9]{4,6}$")  # ASCII digits: \d also takes ٠-٩ and other scripts

# The 20 four-digit PINs chosen most often, from the widely published analyses of
# leaked and disclosed PIN sets (e.g. Data Genetics' study of 3.4 million four-digit
# codes, 2012, and Bonneau, Preibusch and Anderson, "A birthday present every eleven
# wallets?", 2012). Repeats and runs among them (1111, 1234, 4321 ...) are refused by
# the rules above anyway; they stay listed so the list reads as the source gives it.
COMMONEST_PINS = frozenset({
    "1234", "1111", "0000", "1212", "7777", "1004", "2000", "4444", "2222", "6969",
    "9999", "3333", "5555", "6666", "1122", "1313", "8888", "4321", "2001", "1010",
})


class Weakness(StrEnum):
    """Why a PIN of the right shape is still refused."""

    REPEATED = "repeated"
    RUN = "run"
    COMMON = "common"


WHY = {
    Weakness.REPEATED: _l("A PIN of one digit repeated, like 1111, is easy to guess. "
                          "Choose another PIN."),
    Weakness.RUN: _l("A PIN of digits in a row, like 1234 or 4321, is easy to guess. "
                     "Choose another PIN."),
    Weakness.COMMON: _l("This PIN is one of the most used, so thieves try it first. "
                        "Choose another PIN."),
}


def _is_run(pin: str, step: int) -> bool:
    """Each digit is the one before plus `step`, wrapping 9 -> 0 (and 0 -> 9)."""
    return all((int(b) - int(a)) % 10 == step % 10 for a, b in zip(pin, pin[1:], strict=False))


def weakness(pin: str) -> Weakness | None:
    """Why `pin` is too easy to guess, or None when it is not.

    Assumes the shape was checked (4-6 digits); says nothing about the shape.
    """
    if len(set(pin)) == 1:
        return Weakness.REPEATED
    if _is_run(pin, 1) or _is_run(pin, -1):
        return Weakness.RUN
    if pin in COMMONEST_PINS:
        return Weakness.COMMON
    return None


def require_strong_pin(pin: str) -> None:
    """Refuse a PIN a holder may not choose; changes nothing.

    Raises InvalidPin unless `pin` is 4 to 6 digits (Arabic-Indic ones count as their
    ASCII digits), and WeakPin (saying why, in the user's language) when it is one digit
    repeated, a run, or among the commonest.
    """
    pin = ascii_digits(pin or "")
    if not PIN_RE.match(pin):
        raise InvalidPin()
    why = weakness(pin)
    if why is not None:
        raise WeakPin(WHY[why], weakness=why)
