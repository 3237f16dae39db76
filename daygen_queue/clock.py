"""Time as an injected object (trio's idea): every scheduler and every timestamp reads a
``Clock``, so tests run on a ``VirtualClock`` that moves only when told.

The classes live in ``emulator.clock``, a dependency-free leaf module (standard library
only), so that the project has one ``Clock`` protocol and one wall clock; this module is
their public home for ``daygen_queue`` and the service. Importing it does not import the
emulator's engine.
"""

from __future__ import annotations

from emulator.clock import DEFAULT_START, Clock, SystemClock, VirtualClock

__all__ = ["DEFAULT_START", "Clock", "SystemClock", "VirtualClock"]
