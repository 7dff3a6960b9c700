"""The Python `mcp` SDK as a 2026-07-28 client of pi-mcp (`serve --stdio`, or a running `serve --http`): an approval asked as an
input-required result, answered by the SDK's own driver (approve, then decline), and a tampered
requestState, which must be a -32602 error. Driven by tests/mrtr_approvals.rs; prints one line per
step for the Rust test to check.

Usage: python mrtr_python.py PI_MCP_BINARY_OR_HTTP_URL WORKSPACE COMMAND
"""

import asyncio
import os
import sys

from mcp import Client, MCPError, StdioServerParameters, types


async def main(server_arg: str, workspace: str, command: str) -> None:
    answer = {"approve": True}

    async def elicit(_context, params):
        print("asked:", params.message.splitlines()[0], flush=True)
        return types.ElicitResult(action="accept", content={"approve": answer["approve"]})

    if server_arg.startswith("http://"):
        server = server_arg
    else:
        server = StdioServerParameters(
            command=server_arg,
            args=["--workspace", workspace, "serve", "--stdio"],
            env=dict(os.environ),
            cwd=workspace,
        )
    async with Client(server, mode="2026-07-28", elicitation_callback=elicit) as client:
        print("protocol", client.protocol_version, flush=True)

        result = await client.call_tool("bash", {"command": command})
        assert not result.is_error, result
        print("approved: ok", flush=True)

        answer["approve"] = False
        result = await client.call_tool("bash", {"command": command})
        text = " ".join(c.text for c in result.content if c.type == "text")
        assert result.is_error and "NOT run" in text, text
        print("declined: refused", flush=True)

        first = await client.session.call_tool(
            "bash", {"command": command}, allow_input_required=True
        )
        assert isinstance(first, types.InputRequiredResult), first
        assert "approval" in (first.input_requests or {}), first
        try:
            await client.call_tool(
                "bash",
                {"command": command},
                input_responses={"approval": {"action": "accept", "content": {"approve": True}}},
                request_state=first.request_state + "-TAMPERED",
            )
        except MCPError as e:
            assert e.code == -32602, e
            print("tampered: -32602", flush=True)
        else:
            raise AssertionError("a tampered requestState was accepted")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
