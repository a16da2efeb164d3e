"""The constant-time user count agrees with Locust's own walk over the users."""

from __future__ import annotations

import gevent
from locust import User, constant, task
from locust.env import Environment
from locust.runners import LocalRunner

from mendersim.harness.worker.usercount import count_by_group_length


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
