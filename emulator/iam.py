"""Queue-level IAM, kept in memory: everything is permitted, policies are stored and echoed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.iam.v1 import iam_policy_pb2, policy_pb2

from emulator.errors import Aborted, InvalidArgument, NotFound


class IamPolicies:
    """``require_queue(name)`` raises for a queue that does not exist (the engine's lookup)."""

    def __init__(self, require_queue: Callable[[str], object]) -> None:
        self._require_queue = require_queue
        self._policies: dict[str, Any] = {}

    def forget(self, resource: str) -> None:
        self._policies.pop(resource, None)

    async def get_iam_policy(self, request: Any) -> Any:
        self._require_queue(request.resource)
        stored = self._policies.get(request.resource)
        policy = policy_pb2.Policy()
        if stored is not None:
            policy.CopyFrom(stored)
        return policy

    async def set_iam_policy(self, request: Any) -> Any:
        """Replaces the policy (Cloud Tasks' semantics); the etag changes on every write."""
        self._require_queue(request.resource)
        current = self._policies.get(request.resource)
        if request.policy.etag and current is not None and request.policy.etag != current.etag:
            raise Aborted("The policy was changed concurrently (etag mismatch).")
        policy = policy_pb2.Policy()
        policy.CopyFrom(request.policy)
        previous = int.from_bytes(current.etag, "big") if current is not None else 0
        policy.etag = (previous + 1).to_bytes(8, "big")
        self._policies[request.resource] = policy
        return policy

    async def test_iam_permissions(self, request: Any) -> Any:
        """Everything is allowed locally; a missing resource answers an empty set (not
        NOT_FOUND), as the API documents."""
        response = iam_policy_pb2.TestIamPermissionsResponse()
        try:
            self._require_queue(request.resource)
        except (NotFound, InvalidArgument):
            return response
        response.permissions.extend(request.permissions)
        return response
