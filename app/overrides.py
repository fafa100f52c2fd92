"""Fees and limits an administrator changes in the back office, without a release.

A setting is declared once (app.settings) and loaded into `app.config` at start; that
stays its value until an administrator saves another one here. The saved value is a row
in `setting_overrides`, read from the database each time it is used, so every process
(web, workers) sees a change at once and nothing is cached in memory.

A domain makes some of its settings editable with `editable_group(...)` from its
`init_app`, naming each number an administrator may type (a whole setting, or one figure
inside a table-shaped one: "SHOP_DELIVERY_FEES.kurdistan.base"), with its bounds. Code
reads the value in force with `current(name)` instead of `current_app.config[name]`.
Every change is audited with the values before and after.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column

from app.audit import record_audit
from app.database import Base, db, utcnow
from app.errors import NotFound, ValidationFailed
from app.numbers import MAX_AMOUNT, parse_whole


class SettingOverride(Base):
    """The value an administrator gave a setting (JSON `{"value": ...}`); it wins over
    the environment and the default until it is changed again."""

    __tablename__ = "setting_overrides"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


@dataclass(frozen=True)
class EditableField:
    """One number an administrator may type: `key` is a setting's name, or its name and
    the path of a figure inside it, joined by dots."""

    key: str
    label: Any
    minimum: int = 0
    maximum: int = MAX_AMOUNT
    unit: Any = ""

    @property
    def setting(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.key.split(".")[1:])

    @property
    def form_name(self) -> str:
        return self.key.replace(".", "__")


@dataclass(frozen=True)
class EditableGroup:
    key: str
    title: Any
    fields: tuple[EditableField, ...]


_groups: dict[str, EditableGroup] = {}


def editable_group(key: str, title: Any, fields: tuple[EditableField, ...]) -> None:
    """Declare a page's worth of editable figures (called from a domain's init_app)."""
    _groups[key] = EditableGroup(key, title, fields)


def group(key: str) -> EditableGroup:
    try:
        return _groups[key]
    except KeyError as exc:
        raise NotFound() from exc


# Where a session keeps the overrides it read, for the transaction it read them in.
_READ_KEY = "barid_setting_overrides"


def _in_force() -> dict[str, Any]:
    """Every administrator's override, read once per transaction: the table holds a few
    rows, and pricing asks several settings per order (a missing row cannot be kept by
    the identity map, so each `db.get` of a setting never overridden was a query)."""
    session = db()
    read = session.info.get(_READ_KEY)
    if read is not None and read[0] is session.get_transaction():
        return read[1]
    values = {r.name: r.value["value"] for r in db.scalars(select(SettingOverride))
              if "value" in r.value}
    session.info[_READ_KEY] = (session.get_transaction(), values)
    return values


def current(name: str) -> Any:
    """The value of setting `name` in force now: an administrator's, else the one loaded
    at start (a copy, so a caller that changes it changes nothing)."""
    values = _in_force()
    if name in values:
        return copy.deepcopy(values[name])
    return copy.deepcopy(current_app.config[name])


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _put(value: Any, path: tuple[str, ...], figure: int) -> Any:
    if not path:
        return figure
    inner = value
    for part in path[:-1]:
        inner = inner[part]
    inner[path[-1]] = figure
    return value


def figures(key: str) -> dict[str, int]:
    """The figures of group `key` in force now, by field key."""
    values: dict[str, Any] = {}
    out: dict[str, int] = {}
    for f in group(key).fields:
        if f.setting not in values:
            values[f.setting] = current(f.setting)
        out[f.key] = int(_dig(values[f.setting], f.path))
    return out


def change_figures(key: str, raw: dict[str, str | None], *, actor_id: int | None
                   ) -> dict[str, tuple[Any, Any]]:
    """An administrator saves the figures of group `key` (`raw` by field key, as typed:
    "75,000" and "٧٥٠٠٠" too). Returns {setting: (before, after)} of what changed.

    All or nothing: any figure that is not a whole number within its bounds raises
    ValidationFailed naming each such field, and nothing is saved. Each changed setting
    is locked, written and audited (`settings.changed`, before and after); flushes.
    """
    g = group(key)
    errors: dict[str, Any] = {}
    typed: dict[str, int] = {}
    for f in g.fields:
        number = parse_whole(raw.get(f.key))
        if number is None:
            errors[f.key] = _l("Enter a whole number, digits only.")
        elif number < f.minimum:
            errors[f.key] = _l("At least %(n)s.", n=f.minimum)
        elif number > f.maximum:
            errors[f.key] = _l("At most %(n)s.", n=f.maximum)
        else:
            typed[f.key] = number
    if errors:
        raise ValidationFailed(_l("Nothing was saved: please correct the marked figures."),
                               fields=errors)
    changed: dict[str, tuple[Any, Any]] = {}
    names = sorted({f.setting for f in g.fields})
    # Lock the rows of the settings this page writes (in name order, so two saves of
    # overlapping pages wait for each other rather than deadlock).
    rows = {r.name: r for r in db.scalars(select(SettingOverride)
                                          .where(SettingOverride.name.in_(names))
                                          .order_by(SettingOverride.name)
                                          .with_for_update())}
    db().info.pop(_READ_KEY, None)  # read again under the lock, and after this save
    for name in names:
        before = current(name)
        after = copy.deepcopy(before)
        for f in g.fields:
            if f.setting == name:
                after = _put(after, f.path, typed[f.key])
        if after == before:
            continue
        row = rows.get(name)
        if row is None:
            row = SettingOverride(name=name)
            db.add(row)
        row.value = {"value": after}
        row.updated_at = utcnow()
        row.updated_by_id = actor_id
        record_audit("settings.changed", object_type="setting", object_id=name,
                     actor_id=actor_id, details={"group": key, "before": before,
                                                 "after": after})
        changed[name] = (before, after)
    db.flush()
    db().info.pop(_READ_KEY, None)
    return changed
