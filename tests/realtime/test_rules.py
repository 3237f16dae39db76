"""The small rules of the realtime gateway, without I/O."""

from __future__ import annotations

from app.events import JobUpdate
from app.realtime import LiveUpdates
from app.realtime.channel import decode, encode
from app.realtime.rooms import job_room, user_room
from app.realtime.socket_handlers import job_id_from, token_from
from app.realtime.sse import is_finished, is_stale, sse_event
from app.settings import Settings
from tests.realtime.clients import sample_view as view


def test_token_comes_from_the_auth_payload_before_the_query_string() -> None:
    assert token_from({"token": "a"}, {"QUERY_STRING": "token=b"}) == "a"
    assert token_from({"token": "Bearer a"}, {}) == "a"
    assert token_from(None, {"QUERY_STRING": "EIO=4&token=b"}) == "b"
    assert token_from({"token": ""}, {"QUERY_STRING": ""}) is None
    assert token_from({"token": 5}, {}) is None


def test_job_id_is_a_string_or_a_job_id_object() -> None:
    assert job_id_from(("j1",)) == "j1"
    assert job_id_from(({"jobId": "j1"},)) == "j1"
    assert job_id_from(()) is None
    assert job_id_from((None,)) is None
    assert job_id_from(("x" * 65,)) is None


def test_rooms() -> None:
    assert user_room("alice") == "user:alice"
    assert job_room("j1") == "job:j1"


def socketio_origins(raw: str) -> object:
    live = LiveUpdates(Settings(app_env="test", socketio_cors_allowed_origins=raw))
    return live.sio.eio.cors_allowed_origins


def test_origins() -> None:
    assert socketio_origins("*") == "*"
    assert socketio_origins("") == "*"
    assert socketio_origins("https://a.example, https://b.example") == [
        "https://a.example",
        "https://b.example",
    ]


def test_the_update_channel_is_named_after_the_settings_prefix() -> None:
    assert LiveUpdates(Settings(app_env="test")).channel.name == "daygen-socketio:job-updates"
    named = LiveUpdates(Settings(app_env="test", socketio_redis_channel="blue"))
    assert named.channel.name == "blue:job-updates"


def test_a_channel_message_carries_the_owner_and_the_job() -> None:
    update = decode(encode(JobUpdate("alice", view())))
    assert update == JobUpdate("alice", view())
    assert decode("not json") is None
    assert decode('{"job": {"jobId": "j1"}}') is None  # no owner: no room to send it to
    assert decode('{"userId": "alice", "job": {}}') is None


def test_sse_drops_what_the_client_already_has() -> None:
    last = view()
    assert is_stale(view(), last)
    assert is_stale(view(updatedAt="2026-01-01T00:00:00.500Z"), last)
    assert not is_stale(view(progress=90, updatedAt="2026-01-01T00:00:02.000Z"), last)
    assert not is_stale(view(progress=90), last)  # same millisecond, newer content


def test_sse_event_format() -> None:
    event = sse_event(view(status="COMPLETED", progress=100)).decode()
    assert event.startswith("event: jobUpdate\nid: 2026-01-01T00:00:01.000Z\ndata: {")
    assert event.endswith("}\n\n") and "\n\n" not in event[:-2]
    assert is_finished(view(status="FAILED")) and not is_finished(view())
