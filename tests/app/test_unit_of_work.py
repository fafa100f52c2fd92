"""The unit of work: the outermost one commits, an inner one joins, a savepoint fails alone."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.database import db, in_unit_of_work, savepoint, transactional, unit_of_work
from app.seed import AppSetting


def keys() -> list[str]:
    return sorted(db.scalars(select(AppSetting.key)))


def test_an_inner_unit_of_work_joins_the_outer_one_which_commits_once(app_ctx,
                                                                      count_commits):
    with count_commits() as commits, unit_of_work():
        db.add(AppSetting(key="outer", value="1"))
        with unit_of_work():
            db.add(AppSetting(key="inner", value="1"))
            db.flush()
            assert in_unit_of_work()
        assert commits == [], "the inner unit of work does not commit"
    assert len(commits) == 1 and not in_unit_of_work()
    db.remove()
    assert keys() == ["inner", "outer"]


def test_an_error_anywhere_inside_rolls_back_all_of_it(app_ctx):
    with pytest.raises(LookupError), unit_of_work():
        db.add(AppSetting(key="outer", value="1"))
        with unit_of_work():
            db.add(AppSetting(key="inner", value="1"))
            db.flush()
            raise LookupError("the use case failed half way")
    db.remove()
    assert keys() == []


def test_a_savepoint_undoes_only_its_own_step(app_ctx):
    with unit_of_work():
        db.add(AppSetting(key="kept", value="1"))
        with pytest.raises(ValueError), savepoint():
            db.add(AppSetting(key="undone", value="1"))
            db.flush()
            raise ValueError("this step may fail on its own")
        db.add(AppSetting(key="after", value="1"))
    db.remove()
    assert keys() == ["after", "kept"]


def test_transactional_commits_what_the_function_flushed(app_ctx, count_commits):
    @transactional
    def store(key: str) -> str:
        db.add(AppSetting(key=key, value="1"))
        db.flush()
        return key

    with count_commits() as commits:
        assert store("decorated") == "decorated"
    assert len(commits) == 1
    db.remove()
    assert keys() == ["decorated"]
