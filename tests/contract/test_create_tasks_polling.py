"""``create_tasks`` follows a batch operation that is not done on its first answers (the
emulator's ``pending_operation_polls``): it polls GetOperation until done."""

from __future__ import annotations

from daygen_queue import HttpRequest, NewTask, QueueConfig, VirtualClock
from daygen_queue.backends.emulator import EmulatorBackend


async def test_create_tasks_polls_an_operation_until_it_is_done() -> None:
    backend = EmulatorBackend(clock=VirtualClock(), pending_operation_polls=3)
    polls: list[bool] = []
    rpc = backend.rpc
    original = rpc.get_operation

    async def counting(request: object) -> object:
        answer = await original(request)
        polls.append(answer.done)  # type: ignore[attr-defined]
        return answer

    rpc.get_operation = counting  # type: ignore[method-assign]
    async with backend:
        await backend.create_queue(QueueConfig(name="polled"))
        results = await backend.create_tasks(
            "polled",
            [
                NewTask(name=f"t{n}", http_request=HttpRequest(url="http://127.0.0.1:9/"))
                for n in range(3)
            ],
        )

    assert polls == [False, False, True]  # the batch's own answer was the first "not done"
    assert [task.name for task in results] == ["t0", "t1", "t2"]  # type: ignore[union-attr]
