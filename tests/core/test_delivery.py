"""The receiving side's reading of X-CloudTasks-* headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from daygen_queue import InvalidDelivery, TaskDelivery


def test_reads_a_retry_delivery_case_insensitively() -> None:
    delivery = TaskDelivery.from_headers(
        {
            "x-cloudtasks-queuename": "image-generation-queue",
            "X-CLOUDTASKS-TASKNAME": "job-1",
            "X-CloudTasks-TaskRetryCount": "2",
            "X-CloudTasks-TaskExecutionCount": "1",
            "X-CloudTasks-TaskETA": "1666670855.329624",
            "X-CloudTasks-TaskPreviousResponse": "404",
            "X-CloudTasks-TaskRetryReason": "",
        }
    )

    assert delivery.queue_name == "image-generation-queue"
    assert delivery.task_name == "job-1"
    assert delivery.retry_count == 2
    assert delivery.attempt == 3
    assert delivery.execution_count == 1
    assert delivery.eta == datetime(2022, 10, 25, 4, 7, 35, 329624, tzinfo=UTC)
    assert delivery.previous_response == 404
    assert delivery.retry_reason == ""


def test_first_attempt_has_no_previous_response() -> None:
    delivery = TaskDelivery.from_headers(
        {
            "X-CloudTasks-QueueName": "q",
            "X-CloudTasks-TaskName": "t",
            "X-CloudTasks-TaskRetryCount": "0",
        }
    )
    assert delivery.previous_response is None
    assert delivery.retry_reason is None
    assert delivery.attempt == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-CloudTasks-QueueName": "q", "X-CloudTasks-TaskRetryCount": "0"},
        {
            "X-CloudTasks-QueueName": "q",
            "X-CloudTasks-TaskName": "t",
            "X-CloudTasks-TaskRetryCount": "two",
        },
        {
            "X-CloudTasks-QueueName": "q",
            "X-CloudTasks-TaskName": "t",
            "X-CloudTasks-TaskRetryCount": "-1",
        },
        {
            "X-CloudTasks-QueueName": "q",
            "X-CloudTasks-TaskName": "t",
            "X-CloudTasks-TaskRetryCount": "0",
            "X-CloudTasks-TaskETA": "soon",
        },
    ],
)
def test_malformed_deliveries_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidDelivery):
        TaskDelivery.from_headers(headers)
