"""UpdateQueue's field mask, for v2 and v2beta3: which paths set something, and the merge.

A path to a message field replaces that whole group (``http_target`` with no ``http_target``
in the request clears it: that is how queue-level routing is removed). Output-only fields
(``state``, ``purge_time``, ``stats``, v2's ``rate_limits.max_burst_size``) and the unmodelled
``stackdriver_logging_config`` are accepted and ignored; a path that names no Queue field is
INVALID_ARGUMENT. An empty mask means every settable field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from google.protobuf import field_mask_pb2

from emulator.apis import Api
from emulator.errors import InvalidArgument

# The groups UpdateQueue sets, by API version (the first segment of a mask path).
_V2_GROUPS: Final = frozenset(
    {"rate_limits", "retry_config", "http_target", "app_engine_routing_override"}
)
_BETA_GROUPS: Final = _V2_GROUPS - {"app_engine_routing_override"} | {
    "app_engine_http_queue",
    "task_ttl",
    "tombstone_ttl",
    "type_",  # proto-plus names v2beta3's Queue.type "type_" in the descriptor
}
_OUTPUT_ONLY: Final = frozenset({"rate_limits.max_burst_size"})
_V2_EVERY_FIELD: Final = (
    "rate_limits",
    "retry_config",
    "http_target",
    "app_engine_routing_override",
)
_BETA_EVERY_FIELD: Final = (
    "rate_limits",
    "retry_config",
    "http_target",
    "app_engine_http_queue",
    "task_ttl",
    "tombstone_ttl",
)


def settable_mask(mask: field_mask_pb2.FieldMask, api: Api) -> field_mask_pb2.FieldMask:
    """The paths of ``mask`` the engine applies (every settable group for an empty mask);
    INVALID_ARGUMENT for a path that is no field of the Queue message. v2beta3's ``type`` is
    ``type_`` in the descriptor proto-plus registers: clients send ``type``."""
    if api.beta and "type" in mask.paths:
        mask = field_mask_pb2.FieldMask(
            paths=["type_" if path == "type" else path for path in mask.paths]
        )
    if not mask.IsValidForDescriptor(api.Queue.DESCRIPTOR):
        wrong = [path for path in mask.paths if not _names_a_field(path, api)] or mask.paths
        raise InvalidArgument(f"Invalid update_mask path {wrong[0]!r}: not a Queue field.")
    if not mask.paths:
        return field_mask_pb2.FieldMask(paths=_BETA_EVERY_FIELD if api.beta else _V2_EVERY_FIELD)
    groups = _BETA_GROUPS if api.beta else _V2_GROUPS
    paths = [
        path
        for path in mask.paths
        if path.split(".", 1)[0] in groups and (api.beta or path not in _OUTPUT_ONLY)
    ]
    return field_mask_pb2.FieldMask(paths=paths)


def merge(request_queue: Any, current: Any, mask: field_mask_pb2.FieldMask, api: Api) -> None:
    """The masked fields of ``request_queue`` over ``current`` (in place)."""
    mask.MergeMessage(
        _with_masked_groups(request_queue, mask.paths, api),
        current,
        replace_message_field=True,
    )


def _names_a_field(path: str, api: Api) -> bool:
    one = field_mask_pb2.FieldMask(paths=[path])
    return bool(one.IsValidForDescriptor(api.Queue.DESCRIPTOR))


def _with_masked_groups(queue: Any, paths: Iterable[str], api: Api) -> Any:
    """``queue``, with every group a masked sub-path reaches into present.

    protobuf's Python ``MergeMessage`` skips ``retry_config.max_attempts`` when the source has
    no ``retry_config``; its C++ implementation, which Google's servers use, merges from the
    group's defaults instead: the field becomes zero, which UpdateQueue reads as "the server
    default". Presenting the group makes the two agree.
    """
    groups = {path.split(".", 1)[0] for path in paths if "." in path}
    missing = [group for group in groups if not queue.HasField(group)]
    if not missing:
        return queue
    source = api.Queue()
    source.CopyFrom(queue)
    for group in missing:
        getattr(source, group).SetInParent()
    return source
