"""Adapters from ``TaskQueue`` to a Cloud Tasks: Google's (``cloud_tasks``) or the in-process
emulator (``emulator``). Imported lazily by ``open_task_queue``."""
