"""Receivers of a signal sent with ``asend``, and a background task, tested without the database."""

import pytest
from django.test import override_settings

from tutorial_project.instruments import testing_targets as shop
from tutorial_project.instruments.tasks_api import DUMMY, IMMEDIATE, default_task_backend


@pytest.mark.asyncio
async def test_asend_runs_every_receiver():
    shop.outbox.clear()
    answers = await shop.order_placed.asend(sender=None, order_id=7)
    # (receiver, answer) pairs: asend lists the sync receivers' answers first, then the async ones
    assert [(receiver.__name__, answer) for receiver, answer in answers] == [
        ("tell_the_warehouse", "queued"), ("email_the_customer", "emailed")]
    assert sorted(shop.outbox) == ["email: order 7 confirmed", "warehouse: pack order 7"]


@pytest.mark.asyncio
async def test_a_receiver_alone_is_just_a_function():
    shop.outbox.clear()
    assert await shop.email_the_customer(sender=None, order_id=8) == "emailed"


@pytest.mark.asyncio
async def test_the_task_is_enqueued_not_run():
    with override_settings(TASKS={"default": {"BACKEND": DUMMY}}):  # records, runs nothing
        result = await shop.send_receipt.aenqueue(order_id=7)
        assert default_task_backend.results == [result]
        assert result.args == [] and result.kwargs == {"order_id": 7}


@pytest.mark.asyncio
async def test_the_task_does_its_job():
    with override_settings(TASKS={"default": {"BACKEND": IMMEDIATE}}):  # runs it at once
        result = await shop.send_receipt.aenqueue(order_id=7)
        assert result.return_value == "receipt for order 7 sent"
