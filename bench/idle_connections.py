"""Opens COUNT kept-alive HTTP connections to a running server, each after one request
(`GET /_cognate/health`), holds them idle, and prints the server's RSS (from /proc) before,
with them open, and after they close. Source addresses spread over 127.0.0.0/8 so that no
address needs more than 250 connections.

usage: idle_connections.py HOST PORT COUNT PID
"""

import asyncio
import sys


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def open_one(host, port, i):
    source = f"127.0.{1 + i // 250 // 250}.{1 + (i // 250) % 250}"
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    writer.write(f"GET /_cognate/health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:40]
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)
    return writer


async def main():
    host, port, count, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    before = rss_mib(pid)
    writers = []
    for start in range(0, count, 500):
        writers += await asyncio.gather(*(open_one(host, port, i) for i in range(start, min(count, start + 500))))
    await asyncio.sleep(2)
    held = rss_mib(pid)
    for w in writers:
        w.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
    await asyncio.sleep(2)
    after = rss_mib(pid)
    print(f"idle_connections={count} rss_before_mib={before:.1f} rss_held_mib={held:.1f} "
          f"per_connection_kib={(held - before) * 1024 / count:.1f} rss_after_mib={after:.1f}")


asyncio.run(main())
