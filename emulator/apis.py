"""The two Cloud Tasks API versions the emulator serves on one engine: v2 and v2beta3.

Their messages carry the same field names (with other numbers) except where v2beta3 has more
(queue ``type``, ``task_ttl``, ``tombstone_ttl``, ``stats``; ``pull_message`` tasks) or nests
differently (``app_engine_http_queue.app_engine_routing_override``). So every conversion is
written once over field names and told which version's classes to build: an ``Api``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from google.cloud import tasks_v2, tasks_v2beta3


@dataclass(frozen=True, slots=True, eq=False)
class Api:
    """One API version: its generated module and the raw (upb) classes the service builds."""

    version: str  # "v2" / "v2beta3": the REST path prefix and the proto package's last part
    module: Any
    beta: bool
    Queue: Any
    Task: Any
    ListQueuesResponse: Any
    ListTasksResponse: Any
    BatchCreateTasksResponse: Any
    BatchCreateTasksMetadata: Any
    BatchDeleteTasksMetadata: Any
    CmekConfig: Any

    @property
    def package(self) -> str:
        return f"google.cloud.tasks.{self.version}"

    @property
    def service_name(self) -> str:
        return f"{self.package}.CloudTasks"

    def request(self, name: str) -> Any:
        """The raw class of a request message (``CreateTaskRequest``...)."""
        return getattr(self.module, name).pb()


def _api(version: str, module: Any, beta: bool) -> Api:
    return Api(
        version=version,
        module=module,
        beta=beta,
        Queue=module.Queue.pb(),
        Task=module.Task.pb(),
        ListQueuesResponse=module.ListQueuesResponse.pb(),
        ListTasksResponse=module.ListTasksResponse.pb(),
        BatchCreateTasksResponse=module.BatchCreateTasksResponse.pb(),
        BatchCreateTasksMetadata=module.BatchCreateTasksMetadata.pb(),
        BatchDeleteTasksMetadata=module.BatchDeleteTasksMetadata.pb(),
        CmekConfig=module.CmekConfig.pb(),
    )


V2: Final = _api("v2", tasks_v2, beta=False)
V2BETA3: Final = _api("v2beta3", tasks_v2beta3, beta=True)
APIS: Final = (V2, V2BETA3)
