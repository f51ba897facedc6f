"""The floor: the simplest h11-in / httpx-out passthrough, the router's design with nothing else.
Usage: `python bench/floor.py UPSTREAM_URL [PORT]`; prints `PORT <n>` once listening."""

from __future__ import annotations

import asyncio
import socket
import sys

import h11
import httpx

UPSTREAM = sys.argv[1].rstrip("/")
client = httpx.AsyncClient(limits=httpx.Limits(max_connections=512), timeout=600.0,
                           trust_env=False)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = h11.Connection(h11.SERVER)
    while True:
        head, body = None, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            else:
                break
        if head is None:  # ConnectionClosed
            return writer.close()
        upstream = client.build_request(head.method.decode(), UPSTREAM + head.target.decode(),
                                        content=body, headers={"content-type": "application/json"})
        resp = await client.send(upstream, stream=True)
        headers = [(b"content-type", resp.headers["content-type"].encode())]
        if "content-length" in resp.headers:
            headers.append((b"content-length", resp.headers["content-length"].encode()))
        writer.write(conn.send(h11.Response(status_code=resp.status_code, headers=headers)))
        async for raw in resp.aiter_raw():
            writer.write(conn.send(h11.Data(data=raw)))
            await writer.drain()
        await resp.aclose()
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        conn.start_next_cycle()


async def main() -> None:
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("PORT", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
