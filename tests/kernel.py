"""Run code in a kernel of a user's server through the hub's proxy (REST + websocket)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class KernelError(RuntimeError):
    """The code raised in the kernel."""


def start_kernel(server_url: str, token: str) -> str:
    r = requests.post(
        f"{server_url}api/kernels",
        json={"name": "python3"},
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    r.raise_for_status()
    return r.json()["id"]


async def _execute(ws_url: str, token: str, code: str, timeout: float) -> str:
    request = HTTPRequest(ws_url, headers={"Authorization": f"token {token}"})
    conn = await websocket_connect(request)
    msg_id = uuid.uuid4().hex
    conn.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "tests",
                    "session": uuid.uuid4().hex,
                    "date": datetime.now(UTC).isoformat(),
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    out: list[str] = []
    try:
        while True:
            raw = await asyncio.wait_for(conn.read_message(), timeout)
            if raw is None:
                raise KernelError("websocket closed")
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "execute_result":
                out.append(content["data"]["text/plain"])
            elif kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise KernelError(f"{content['ename']}: {content['evalue']}")
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)
    finally:
        conn.close()


def execute(
    server_url: str, token: str, code: str, *, kernel_id: str | None = None, timeout: float = 60
) -> str:
    """Run ``code`` in a (new) kernel of the server at ``server_url``; return its output."""
    kernel_id = kernel_id or start_kernel(server_url, token)
    ws_url = server_url.replace("http", "ws", 1) + f"api/kernels/{kernel_id}/channels"
    return asyncio.run(_execute(ws_url, token, code, timeout))
