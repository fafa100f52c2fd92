"""Fixtures for the shop's tests."""

from __future__ import annotations

import pytest

from shop.models import Category, Merchant
from tests.shop.helpers import make_category, make_merchant


@pytest.fixture()
def category(app) -> Category:
    return make_category()


@pytest.fixture()
def local_shop(app) -> Merchant:
    return make_merchant()
