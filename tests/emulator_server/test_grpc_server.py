"""The gRPC face through Google's own async client: codes and messages as Cloud Tasks answers
them, paging, views, field masks, IAM, locations and v2beta3 stats."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.api_core import exceptions
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2

from emulator.errors import QUEUE_MISSING, QUEUE_NAME_FORMAT, TASK_TOMBSTONED
from tests.emulator_server.conftest import PARENT, GrpcStack
from tests.support.receiver import Receiver


async def make_queue(stack: GrpcStack, queue_id: str, **queue: object) -> object:
    return await stack.client.create_queue(
        parent=PARENT, queue={"name": stack.queue(queue_id), **queue}
    )


async def test_malformed_queue_name_is_invalid_with_a_help_link(stack: GrpcStack) -> None:
    with pytest.raises(exceptions.InvalidArgument) as caught:
        await stack.client.create_queue(parent=PARENT, queue={"name": "queues/bad name"})

    assert caught.value.message == QUEUE_NAME_FORMAT
    helps = [d for d in caught.value.details if isinstance(d, error_details_pb2.Help)]
    assert helps and helps[0].links[0].description == "Definition of queue name"


@pytest.mark.parametrize(
    ("rate_limits", "retry_config", "message"),
    [
        ({"max_dispatches_per_second": 501}, {}, "must be less than or equal to 500."),
        ({"max_dispatches_per_second": -1}, {}, "maxDispatchesPerSecond cannot be negative."),
        ({"max_concurrent_dispatches": 5001}, {}, "less than or equal to 5000."),
        ({}, {"max_attempts": -2}, "RetryConfig.maxAttempts must be greater or equal to -1."),
        ({}, {"max_doublings": -1}, "RetryConfig.maxDoublings cannot be negative."),
        (
            {},
            {"min_backoff": timedelta(seconds=10), "max_backoff": timedelta(seconds=5)},
            "minBackoff must be less than or equal to RetryConfig.maxBackoff.",
        ),
    ],
)
async def test_out_of_range_queue_config_is_invalid(
    stack: GrpcStack, rate_limits: dict[str, object], retry_config: dict[str, object], message: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=message.replace(".", r"\.")):
        await make_queue(stack, "q", rate_limits=rate_limits, retry_config=retry_config)
    with pytest.raises(exceptions.NotFound):
        await stack.client.get_queue(name=stack.queue("q"))


async def test_unknown_queue_is_not_found_with_cloud_tasks_message(stack: GrpcStack) -> None:
    with pytest.raises(exceptions.NotFound) as caught:
        await stack.client.get_queue(name=stack.queue("missing"))
    assert caught.value.message == QUEUE_MISSING

    with pytest.raises(exceptions.NotFound):
        await stack.client.create_task(
            parent=stack.queue("missing"), task={"http_request": {"url": "http://127.0.0.1:9/"}}
        )
    with pytest.raises(exceptions.NotFound, match="Requested entity was not found"):
        await stack.client.delete_queue(name=stack.queue("missing"))


async def test_existing_queue_and_recently_deleted_queue(stack: GrpcStack) -> None:
    await make_queue(stack, "q")
    with pytest.raises(exceptions.AlreadyExists, match="Queue already exists"):
        await make_queue(stack, "q")
    await stack.client.delete_queue(name=stack.queue("q"))
    with pytest.raises(exceptions.FailedPrecondition, match="existed too recently"):
        await make_queue(stack, "q")


async def test_bad_task_id_and_queue_mismatch_are_invalid(stack: GrpcStack) -> None:
    await make_queue(stack, "q")
    with pytest.raises(exceptions.InvalidArgument, match='Task ID "bad id!" can contain only'):
        await stack.client.create_task(
            parent=stack.queue("q"),
            task={
                "name": stack.queue("q") + "/tasks/bad id!",
                "http_request": {"url": "http://127.0.0.1:9/"},
            },
        )
    with pytest.raises(exceptions.InvalidArgument, match="must be the same as the queue name"):
        await stack.client.create_task(
            parent=stack.queue("q"),
            task={
                "name": stack.queue("other") + "/tasks/t1",
                "http_request": {"url": "http://127.0.0.1:9/"},
            },
        )
    with pytest.raises(exceptions.InvalidArgument, match="must start with 'http://'"):
        await stack.client.create_task(
            parent=stack.queue("q"), task={"http_request": {"url": "ftp://x/"}}
        )
    with pytest.raises(exceptions.InvalidArgument, match="dispatchDeadline"):
        await stack.client.create_task(
            parent=stack.queue("q"),
            task={
                "http_request": {"url": "http://127.0.0.1:9/"},
                "dispatch_deadline": timedelta(seconds=5),
            },
        )


async def test_task_over_one_mebibyte_is_invalid_and_just_under_is_accepted(
    stack: GrpcStack,
) -> None:
    await make_queue(stack, "q")
    await stack.client.pause_queue(name=stack.queue("q"))

    with pytest.raises(exceptions.InvalidArgument, match="maximum task size"):
        await stack.client.create_task(
            parent=stack.queue("q"),
            task={"http_request": {"url": "http://127.0.0.1:9/", "body": b"x" * (1024 * 1024)}},
        )
    created = await stack.client.create_task(
        parent=stack.queue("q"),
        task={"http_request": {"url": "http://127.0.0.1:9/", "body": b"x" * 1_000_000}},
    )
    assert created.name.startswith(stack.queue("q") + "/tasks/")


async def test_list_queues_pages_in_name_order_and_filters_by_state(stack: GrpcStack) -> None:
    names = [f"q-{index:02d}" for index in range(25)]
    for name in reversed(names):
        await make_queue(stack, name)
    for name in names[:7]:
        await stack.client.pause_queue(name=stack.queue(name))

    pages = []
    token = ""
    while True:
        response = await stack.client.list_queues(
            request={"parent": PARENT, "page_size": 10, "page_token": token}
        )
        page = response._response  # one page, not the auto-paging iterator
        pages.append([q.name.rsplit("/", 1)[-1] for q in page.queues])
        token = page.next_page_token
        if not token:
            break
    paused = [
        q.name.rsplit("/", 1)[-1]
        async for q in await stack.client.list_queues(
            request={"parent": PARENT, "filter": "state: PAUSED", "page_size": 3}
        )
    ]

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [name for page in pages for name in page] == names
    assert paused == names[:7]


async def test_page_token_must_be_valid_and_keep_its_filter(stack: GrpcStack) -> None:
    for index in range(3):
        await make_queue(stack, f"q{index}")
    first = await stack.client.list_queues(
        request={"parent": PARENT, "page_size": 1, "filter": "state: RUNNING"}
    )
    token = first._response.next_page_token
    assert token

    with pytest.raises(exceptions.InvalidArgument, match="filter must not change"):
        await stack.client.list_queues(request={"parent": PARENT, "page_token": token})
    with pytest.raises(exceptions.InvalidArgument, match="Invalid page token"):
        await stack.client.list_queues(request={"parent": PARENT, "page_token": "!!garbage"})
    with pytest.raises(exceptions.InvalidArgument, match="Invalid filter"):
        await stack.client.list_queues(request={"parent": PARENT, "filter": "size > 3"})


async def test_list_tasks_pages_through_every_task_once(stack: GrpcStack) -> None:
    await make_queue(stack, "q")
    await stack.client.pause_queue(name=stack.queue("q"))
    created = set()
    for _ in range(120):
        task = await stack.client.create_task(
            parent=stack.queue("q"), task={"http_request": {"url": "http://127.0.0.1:9/"}}
        )
        created.add(task.name)

    listed = [
        task.name
        async for task in await stack.client.list_tasks(
            request={"parent": stack.queue("q"), "page_size": 50}
        )
    ]

    assert len(listed) == 120 and set(listed) == created


async def test_basic_view_omits_the_body_and_full_view_has_it(stack: GrpcStack) -> None:
    await make_queue(stack, "q")
    await stack.client.pause_queue(name=stack.queue("q"))
    name = stack.queue("q") + "/tasks/t1"
    created = await stack.client.create_task(
        parent=stack.queue("q"),
        task={
            "name": name,
            "http_request": {
                "url": "http://127.0.0.1:9/",
                "body": b"secret",
                "headers": {"A": "1"},
            },
        },
    )
    basic = await stack.client.get_task(name=name)
    full = await stack.client.get_task(request={"name": name, "response_view": 2})
    [listed] = [t async for t in await stack.client.list_tasks(parent=stack.queue("q"))]

    assert created.http_request.body == b"" and created.view.name == "BASIC"
    assert basic.http_request.body == b"" and basic.http_request.headers["A"] == "1"
    assert full.http_request.body == b"secret" and full.view.name == "FULL"
    assert listed.http_request.body == b""
    assert full.dispatch_deadline == timedelta(minutes=10)


async def test_update_queue_applies_only_the_masked_fields(stack: GrpcStack) -> None:
    await make_queue(
        stack,
        "q",
        rate_limits={"max_dispatches_per_second": 7, "max_concurrent_dispatches": 9},
        retry_config={"max_attempts": 5},
    )

    updated = await stack.client.update_queue(
        queue={
            "name": stack.queue("q"),
            "rate_limits": {"max_dispatches_per_second": 3, "max_concurrent_dispatches": 1},
            "retry_config": {"max_attempts": 8},
        },
        update_mask=field_mask_pb2.FieldMask(paths=["retry_config.max_attempts"]),
    )

    assert updated.retry_config.max_attempts == 8
    assert updated.rate_limits.max_dispatches_per_second == 7
    assert updated.rate_limits.max_concurrent_dispatches == 9
    with pytest.raises(exceptions.InvalidArgument, match="update_mask"):
        await stack.client.update_queue(
            queue={"name": stack.queue("q")},
            update_mask=field_mask_pb2.FieldMask(paths=["no_such_field"]),
        )


async def test_update_queue_is_an_upsert_and_never_changes_state(stack: GrpcStack) -> None:
    created = await stack.client.update_queue(
        queue={"name": stack.queue("new"), "rate_limits": {"max_dispatches_per_second": 2}},
    )
    await stack.client.pause_queue(name=stack.queue("new"))
    updated = await stack.client.update_queue(
        queue={"name": stack.queue("new"), "state": 1, "retry_config": {"max_attempts": 4}},
        update_mask=field_mask_pb2.FieldMask(paths=["retry_config.max_attempts", "state"]),
    )

    assert created.rate_limits.max_dispatches_per_second == 2
    assert created.rate_limits.max_burst_size == 10
    assert updated.state.name == "PAUSED" and updated.retry_config.max_attempts == 4


async def test_a_masked_field_of_an_absent_group_takes_the_server_default(
    stack: GrpcStack,
) -> None:
    """Proto3 "unset" is zero, and zero means the default: as Google's servers merge masks,
    ``retry_config.max_attempts`` with no ``retry_config`` sent resets that one field."""
    await make_queue(
        stack, "q", retry_config={"max_attempts": 5, "max_doublings": 3}, rate_limits={}
    )

    updated = await stack.client.update_queue(
        queue={"name": stack.queue("q")},
        update_mask=field_mask_pb2.FieldMask(paths=["retry_config.max_attempts"]),
    )

    assert updated.retry_config.max_attempts == 100
    assert updated.retry_config.max_doublings == 3


@pytest.mark.parametrize(
    ("field", "zero", "default"),
    [
        ("max_attempts", 0, 100),
        ("max_retry_duration", timedelta(0), timedelta(0)),
        ("min_backoff", timedelta(0), timedelta(milliseconds=100)),
        ("max_backoff", timedelta(0), timedelta(hours=1)),
        ("max_doublings", 0, 16),
    ],
)
async def test_every_zero_retry_field_reports_the_cloud_tasks_default(
    stack: GrpcStack, field: str, zero: object, default: object
) -> None:
    """Proto3 zero is "unset", so Cloud Tasks reports its default for it: sent as zero in a
    whole retry_config, masked alone, or with an empty retry_config on CreateQueue."""
    empty = await make_queue(stack, f"empty-{field.replace('_', '-')}", retry_config={})
    sent = await make_queue(stack, f"sent-{field.replace('_', '-')}", retry_config={field: zero})
    masked = await stack.client.update_queue(
        queue={"name": stack.queue(f"masked-{field.replace('_', '-')}"), "retry_config": {}},
        update_mask=field_mask_pb2.FieldMask(paths=[f"retry_config.{field}"]),
    )

    for queue in (empty, sent, masked):
        assert getattr(queue.retry_config, field) == default  # type: ignore[attr-defined]


async def test_a_mask_of_output_only_fields_changes_nothing_but_still_upserts(
    stack: GrpcStack,
) -> None:
    only_state = field_mask_pb2.FieldMask(paths=["state", "rate_limits.max_burst_size"])
    await make_queue(stack, "old", rate_limits={"max_dispatches_per_second": 7})
    await stack.client.pause_queue(name=stack.queue("old"))

    old = await stack.client.update_queue(
        queue={"name": stack.queue("old"), "state": 1, "rate_limits": {"max_burst_size": 1}},
        update_mask=only_state,
    )
    new = await stack.client.update_queue(
        queue={"name": stack.queue("new"), "rate_limits": {"max_dispatches_per_second": 7}},
        update_mask=only_state,
    )

    assert old.state.name == "PAUSED"
    assert (old.rate_limits.max_dispatches_per_second, old.rate_limits.max_burst_size) == (7, 10)
    assert new.state.name == "RUNNING"
    assert new.rate_limits.max_dispatches_per_second == 500  # created with every default


async def test_queue_without_config_gets_cloud_tasks_defaults(stack: GrpcStack) -> None:
    queue = await make_queue(stack, "plain")

    assert queue.rate_limits.max_dispatches_per_second == 500  # type: ignore[attr-defined]
    assert queue.rate_limits.max_burst_size == 100  # type: ignore[attr-defined]
    assert queue.rate_limits.max_concurrent_dispatches == 1000  # type: ignore[attr-defined]
    retry = queue.retry_config  # type: ignore[attr-defined]
    assert (retry.max_attempts, retry.max_doublings) == (100, 16)
    assert retry.min_backoff == timedelta(milliseconds=100)
    assert retry.max_backoff == timedelta(hours=1)


async def test_pause_resume_purge_and_deleted_task_tombstone(stack: GrpcStack) -> None:
    await make_queue(stack, "q")
    paused = await stack.client.pause_queue(name=stack.queue("q"))
    name = stack.queue("q") + "/tasks/t"
    await stack.client.create_task(
        parent=stack.queue("q"), task={"name": name, "http_request": {"url": "http://127.0.0.1:9/"}}
    )
    await stack.client.delete_task(name=name)

    with pytest.raises(exceptions.NotFound) as caught:
        await stack.client.get_task(name=name)
    with pytest.raises(exceptions.AlreadyExists, match="Requested entity already exists"):
        await stack.client.create_task(
            parent=stack.queue("q"),
            task={"name": name, "http_request": {"url": "http://127.0.0.1:9/"}},
        )
    purged = await stack.client.purge_queue(name=stack.queue("q"))
    resumed = await stack.client.resume_queue(name=stack.queue("q"))

    assert caught.value.message == TASK_TOMBSTONED
    assert paused.state.name == "PAUSED" and resumed.state.name == "RUNNING"
    assert purged.purge_time is not None


async def test_run_task_delivers_and_queue_stats_come_from_v2beta3(
    stack: GrpcStack, receiver: Receiver
) -> None:
    await make_queue(stack, "q")
    await stack.client.pause_queue(name=stack.queue("q"))
    name = stack.queue("q") + "/tasks/now"
    await stack.client.create_task(
        parent=stack.queue("q"), task={"name": name, "http_request": {"url": receiver.url("/r")}}
    )
    before = await stack.beta.get_queue(
        request={"name": stack.queue("q"), "read_mask": {"paths": ["stats"]}}
    )
    without_mask = await stack.beta.get_queue(name=stack.queue("q"))

    ran = await stack.client.run_task(name=name)
    await receiver.wait_for_path("/r")

    assert before.stats.tasks_count == 1
    assert "stats" not in without_mask
    assert ran.name == name


async def test_iam_policy_is_kept_in_memory(stack: GrpcStack) -> None:
    await make_queue(stack, "q")
    resource = stack.queue("q")
    empty = await stack.client.get_iam_policy(request={"resource": resource})
    policy = await stack.client.set_iam_policy(
        request={
            "resource": resource,
            "policy": {
                "bindings": [{"role": "roles/cloudtasks.enqueuer", "members": ["user:a@b.c"]}]
            },
        }
    )
    fetched = await stack.client.get_iam_policy(request={"resource": resource})
    allowed = await stack.client.test_iam_permissions(
        request={"resource": resource, "permissions": ["cloudtasks.tasks.create"]}
    )
    missing = await stack.client.test_iam_permissions(
        request={"resource": stack.queue("nope"), "permissions": ["cloudtasks.tasks.create"]}
    )

    assert not empty.bindings
    assert fetched.bindings[0].role == "roles/cloudtasks.enqueuer"
    assert fetched.etag == policy.etag
    assert list(allowed.permissions) == ["cloudtasks.tasks.create"]
    assert list(missing.permissions) == []
    with pytest.raises(exceptions.Aborted):
        await stack.client.set_iam_policy(
            request={"resource": resource, "policy": {"etag": b"stale"}}
        )


async def test_locations_mixin(stack: GrpcStack) -> None:
    await make_queue(stack, "q")
    listed = await stack.client.list_locations(request={"name": "projects/test-project"})
    one = await stack.client.get_location(
        request={"name": "projects/test-project/locations/europe-west1"}
    )

    assert "projects/test-project/locations/local" in [loc.name for loc in listed.locations]
    assert one.location_id == "europe-west1"


async def test_task_with_oidc_token_is_delivered_with_a_verifiable_jwt(
    stack: GrpcStack, receiver: Receiver
) -> None:
    import jwt

    await make_queue(stack, "q")
    await stack.client.create_task(
        parent=stack.queue("q"),
        task={
            "http_request": {
                "url": receiver.url("/secure?a=1"),
                "oidc_token": {
                    "service_account_email": "tasks@test-project.iam.gserviceaccount.com"
                },
            }
        },
    )
    [received] = await receiver.wait_for_path("/secure?a=1")
    token = (received.header("Authorization") or "").removeprefix("Bearer ")
    [key] = stack.issuer.jwks()["keys"]

    claims = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience=receiver.url("/secure?a=1"),
        issuer="https://accounts.google.com",
    )

    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    assert claims["email"] == "tasks@test-project.iam.gserviceaccount.com"
    assert claims["email_verified"] is True
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["sub"] == claims["azp"] and claims["sub"].isdigit()
