"""lesson_tests/ (lesson 10's example tests) pass, except the six that fail on purpose."""

import re

from tutorial_project.instruments.run_tests import run_pytest

FAIL_ON_PURPOSE = {
    "test_transaction_trap.py::test_trap_async_orm_in_a_db_test": "database table is locked",
    "test_blocked_loop.py::test_pause_blocking_is_caught": "the event loop was blocked",
    "test_blocked_loop.py::test_caught_when_the_logging_config_disabled_asyncio":
        "the event loop was blocked",
    "test_blocked_loop.py::test_caught_when_asyncio_does_not_propagate":
        "the event loop was blocked",
    "test_blocked_loop.py::test_an_await_that_does_not_suspend_ends_no_step":
        "the event loop was blocked",
    "test_debug_mode.py::test_the_loop_is_in_debug_mode": "debug mode False",
}


def test_only_the_lessons_traps_fail():
    run = run_pytest(".")
    failed = dict(re.findall(r"^FAILED lesson_tests/(\S+) - (.*)$", run.stdout, re.MULTILINE))
    assert set(failed) == set(FAIL_ON_PURPOSE), run.stdout
    for test, reason in FAIL_ON_PURPOSE.items():
        assert reason in failed[test], failed[test]
    passed = re.search(r"(\d+) passed", run.stdout)
    assert passed and int(passed.group(1)) >= 15, run.stdout
