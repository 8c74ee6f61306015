"""Lesson 08's checks: the reference solutions pass, placeholders and plausible mistakes do not."""

import math
import statistics

from tutorial_project.course.exercises.lesson08 import check_expected_throughput, check_percentile
from tutorial_project.instruments.loadtest.loadgen import percentile


def test_percentile():
    assert check_percentile(percentile)
    assert not check_percentile(...).solved
    verdict = check_percentile(lambda values, p: statistics.mean(values))
    assert not verdict and "ceil(p / 100 * n)" in str(verdict)
    def rank_from_zero(values, p):  # off by one
        return sorted(values)[min(len(values) - 1, math.ceil(p / 100 * len(values)))]

    assert not check_percentile(rank_from_zero)


def expected_throughput(concurrency, wait_seconds, threads=None):
    in_flight = concurrency if threads is None else min(concurrency, threads)
    return in_flight / wait_seconds


def test_expected_throughput():
    assert check_expected_throughput(expected_throughput)
    assert not check_expected_throughput(...).solved
    def ignores_the_pool(concurrency, wait_seconds, threads=None):
        return concurrency / wait_seconds

    def multiplies(concurrency, wait_seconds, threads=None):
        return concurrency * wait_seconds

    verdict = check_expected_throughput(ignores_the_pool)
    assert not verdict and "caps the requests in flight" in str(verdict)
    assert not check_expected_throughput(multiplies)
