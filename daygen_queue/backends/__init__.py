"""The transports under ``CloudTasksQueue``: Google's clients (``cloud_tasks``: gRPC, REST) and
the emulator's service in process (``emulator``). Imported lazily by ``open_task_queue``."""
