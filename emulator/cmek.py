"""``GetCmekConfig`` / ``UpdateCmekConfig``: one Cloud KMS key name per project and location.

Stored and echoed only: the emulator encrypts nothing (it has no KMS), so a key has no
cryptographic effect. What it does keep is the documented incompatibility: while a location
has a key, queue-level routing cannot be applied there and tasks cannot be created on a queue
that has it (FAILED_PRECONDITION). Kept in memory, like IAM policies.
"""

from __future__ import annotations

import re
from typing import Any, Final

from google.protobuf import field_mask_pb2

from emulator.apis import Api
from emulator.errors import FailedPrecondition, InvalidArgument

_CONFIG_NAME_RE: Final = re.compile(
    r"^(?P<location>projects/[A-Za-z0-9:.\-]+/locations/[A-Za-z0-9\-]+)/(?:cmekConfig|CmekConfig)$"
)
_KMS_KEY_RE: Final = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")
ROUTING_WITH_CMEK: Final = (
    "Queue-level routing (Queue.httpTarget) is not compatible with CMEK: this location has a "
    "CMEK key configured."
)


class CmekConfigs:
    def __init__(self) -> None:
        self._keys: dict[str, str] = {}  # projects/P/locations/L -> KMS key name

    @staticmethod
    def location_of(name: str) -> str:
        """``projects/P/locations/L`` of a config name (the API's example spells it
        ``CmekConfig``, its HTTP rule ``cmekConfig``: both are accepted)."""
        match = _CONFIG_NAME_RE.match(name)
        if match is None:
            raise InvalidArgument(
                f'Invalid resource field value in the request: "{name}" is not a CMEK config '
                'name: expected "projects/PROJECT_ID/locations/LOCATION_ID/cmekConfig".'
            )
        return match["location"]

    @property
    def any_enabled(self) -> bool:
        """Cheap test for CreateTask's hot path: no key anywhere, nothing to check."""
        return bool(self._keys)

    def enabled(self, location: str) -> bool:
        return bool(self._keys.get(location))

    def check_routing_allowed(self, location: str) -> None:
        if self._keys and self.enabled(location):
            raise FailedPrecondition(ROUTING_WITH_CMEK, resource="queue")

    def _config(self, location: str, api: Api) -> Any:
        return api.CmekConfig(name=f"{location}/cmekConfig", kms_key=self._keys.get(location, ""))

    def get(self, request: Any, api: Api) -> Any:
        """A location that never had a key answers an empty ``kms_key``, not NOT_FOUND ("By
        default there is no kms_key configured")."""
        return self._config(self.location_of(request.name), api)

    def update(self, request: Any, api: Api) -> Any:
        """Creates or updates; an empty ``kms_key`` turns CMEK off. The mask may be empty or
        name ``kms_key``; ``name`` is output only."""
        config = request.cmek_config
        location = self.location_of(config.name)
        mask: field_mask_pb2.FieldMask = request.update_mask
        unknown = [path for path in mask.paths if path not in ("kms_key", "name")]
        if unknown:
            raise InvalidArgument(
                f"Invalid update_mask path {unknown[0]!r}: CmekConfig has kms_key only."
            )
        if mask.paths and "kms_key" not in mask.paths:
            return self._config(location, api)
        if config.kms_key and _KMS_KEY_RE.match(config.kms_key) is None:
            raise InvalidArgument(
                "CmekConfig.kmsKey must be of the form projects/PROJECT_ID/locations/"
                "LOCATION_ID/keyRings/KEY_RING_ID/cryptoKeys/KEY_ID."
            )
        if config.kms_key:
            self._keys[location] = config.kms_key
        else:
            self._keys.pop(location, None)
        return self._config(location, api)
