"""The Python `mcp` SDK (2.3.0) as a client of pi-mcp's tasks (SEP-2663, the
`io.modelcontextprotocol/tasks` extension) over `pi-mcp serve --stdio`, speaking 2026-07-28.

The SDK has the extension's types but no driver, so this script is the small client extension an
application would write: it declares the extension, claims the `resultType: "task"` shape of
`tools/call`, and resolves it by polling `tasks/get`. Steps, one printed line each for
tests/tasks.rs to check:

- a `bash` call with a timeout above the policy's `task_after_secs` comes back as a task and
  resolves (through the claim) to the command's result;
- a long `bash` task is cancelled with `tasks/cancel` once its command has started (the Rust test
  then checks by effect that nothing of it is left and its canary never appears);
- a client without the extension gets the plain result, and -32021 for `tasks/get`.

Usage: python tasks_python.py PI_MCP_BINARY WORKSPACE MARKER
"""

import asyncio
import os
import sys
from typing import Any, Literal

from pydantic import TypeAdapter

from mcp import Client, MCPError, StdioServerParameters, types
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim

TASKS = "io.modelcontextprotocol/tasks"
ANY = TypeAdapter(dict[str, Any])
TERMINAL = {"completed", "failed", "cancelled"}


class TaskHandle(types.Result):
    """`CreateTaskResult`: the task a `tools/call` became."""

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    ttl_ms: int | None = None
    poll_interval_ms: int | None = None


class GetTask(types.Request[types.GetTaskRequestParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: types.GetTaskRequestParams
    name_param = "taskId"


class CancelTask(types.Request[types.CancelTaskRequestParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: types.CancelTaskRequestParams
    name_param = "taskId"


async def get_task(session, task_id: str) -> dict[str, Any]:
    return await session.send_request(GetTask(params=types.GetTaskRequestParams(task_id=task_id)), ANY)


async def settle(session, task_id: str) -> dict[str, Any]:
    while True:
        task = await get_task(session, task_id)
        if task["status"] in TERMINAL:
            return task
        await asyncio.sleep(0.05)


async def resolve(handle: TaskHandle, ctx: ClaimContext) -> types.CallToolResult:
    print(
        f"created: {handle.status} ttlMs={handle.ttl_ms} pollIntervalMs={handle.poll_interval_ms}",
        flush=True,
    )
    task = await settle(ctx.session, handle.task_id)
    assert task["status"] == "completed", task
    return types.CallToolResult.model_validate(task["result"])


class Tasks(ClientExtension):
    identifier = TASKS

    def claims(self):
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=resolve)]


def text(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if c.type == "text")


async def main(binary: str, workspace: str, marker: str) -> None:
    server = StdioServerParameters(
        command=binary,
        args=["--workspace", workspace, "serve", "--stdio"],
        env=dict(os.environ),
        cwd=workspace,
    )
    async with Client(server, mode="2026-07-28", extensions=[Tasks()]) as client:
        print("protocol", client.protocol_version, flush=True)

        result = await client.call_tool("bash", {"command": "echo from-a-task", "timeout_secs": 60})
        assert not result.is_error and "from-a-task" in text(result), result
        print("task result: from-a-task", flush=True)

        command = f"echo started > started.txt; sleep {marker}; echo late > canary.txt"
        handle = await client.session.call_tool(
            "bash", {"command": command, "timeout_secs": 120}, allow_claimed=True
        )
        assert isinstance(handle, TaskHandle), handle
        started = os.path.join(workspace, "started.txt")
        while not os.path.exists(started):
            await asyncio.sleep(0.02)
        ack = await client.session.send_request(
            CancelTask(params=types.CancelTaskRequestParams(task_id=handle.task_id)), ANY
        )
        assert ack.get("resultType") == "complete" and "status" not in ack, ack
        task = await settle(client.session, handle.task_id)
        print("cancelled:", task["status"], flush=True)

    async with Client(server, mode="2026-07-28") as plain:
        result = await plain.call_tool("bash", {"command": "echo plain", "timeout_secs": 60})
        assert not result.is_error and "plain" in text(result), result
        print("no extension: plain result", flush=True)
        try:
            await get_task(plain.session, "any")
        except MCPError as e:
            print("no extension: tasks/get", e.code, flush=True)
        else:
            raise AssertionError("tasks/get without the extension answered")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
