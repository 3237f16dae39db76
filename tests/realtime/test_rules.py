"""The small rules of the realtime gateway, without I/O."""

from __future__ import annotations

from app.realtime.config import RealtimeConfig, parse_origins
from app.realtime.rooms import job_room, user_room
from app.realtime.socket_handlers import job_id_from, token_from
from app.realtime.sse import is_finished, is_stale, sse_event
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


def test_origins() -> None:
    assert parse_origins("*") == "*"
    assert parse_origins("") == "*"
    assert parse_origins("https://a.example, https://b.example") == [
        "https://a.example",
        "https://b.example",
    ]


def test_config_reads_the_settings_fields_it_finds() -> None:
    class Partial:
        redis_url = "redis://127.0.0.1:6379/1"

    config = RealtimeConfig.from_settings(Partial())
    assert config.redis_url == "redis://127.0.0.1:6379/1"
    assert config.sse_channel == "daygen-socketio:sse"
    assert RealtimeConfig.from_settings(object()).redis_url is None


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
