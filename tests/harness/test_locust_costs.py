"""The constant-time user count agrees with Locust's own walk over the users; Locust's
default options are computed once and stay the same."""

from __future__ import annotations

import gevent
from locust import User, argument_parser, constant, task
from locust.env import Environment
from locust.runners import LocalRunner

from mendersim.harness.worker.locust_costs import count_by_group_length, default_args_once


class Sleeper(User):
    wait_time = constant(3600)

    @task
    def nothing(self) -> None:
        pass


class Other(Sleeper):
    pass


def _runner(*classes: type[User]) -> LocalRunner:
    return Environment(user_classes=list(classes)).create_local_runner()


def test_one_user_class_is_counted_by_the_group_length_as_locust_counts_it():
    runner = _runner(Sleeper)
    walk = LocalRunner.user_classes_count.fget
    count_by_group_length(runner)
    assert isinstance(runner, LocalRunner)
    runner.spawn_users({"Sleeper": 7})
    gevent.sleep(0)
    assert runner.user_classes_count == walk(runner) == {"Sleeper": 7}
    assert runner.user_count == 7
    runner.stop_users({"Sleeper": 3})
    gevent.sleep(0)
    assert runner.user_classes_count == walk(runner) == {"Sleeper": 4}
    runner.quit()


def test_several_user_classes_keep_locusts_count():
    runner = _runner(Sleeper, Other)
    count_by_group_length(runner)
    assert type(runner) is LocalRunner
    runner.quit()


def test_default_options_are_computed_once_and_unchanged():
    fresh = argument_parser.default_args_dict()
    default_args_once()
    default_args_once()
    assert argument_parser.default_args_dict() == fresh
    assert argument_parser.default_args_dict() is argument_parser.default_args_dict()
