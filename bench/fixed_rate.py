"""An open-loop load generator: POSTs intake bodies at a fixed rate over keep-alive loopback connections and
measures each latency from the moment the request was due (so queueing counts, no coordinated omission).

    .venv/bin/python bench/fixed_rate.py URL --rate 1000 --seconds 10
    .venv/bin/python bench/fixed_rate.py URL --closed --seconds 8 --connections 64

With `--closed` it is a closed loop instead (the Python counterpart of wrk): each connection sends its next request
as soon as the last one is answered, for `--seconds`; latency from each request's sending.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit

import uvloop


async def run(url: str, rate: float, seconds: float, *, connections: int, families: str, tag: str) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    total = int(rate * seconds)
    queue: asyncio.Queue[int] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter() + 0.2

    async def producer() -> None:
        for index in range(total):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait(index)
        for _ in range(connections):
            queue.put_nowait(-1)

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (index := await queue.get()) >= 0:
                body = (
                    '{"tenant_id":"rate","trace_id":"' + f"{tag}-{index}" + '","correlation_id":"c",'
                    '"outcome":"success","guardrail_decision":"ALLOW","family_versions":' + families + "}"
                ).encode()
                writer.write(
                    b"POST /api/v1/learning/signals/intake HTTP/1.1\r\nHost: bench\r\n"
                    b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                status = int(status_line.split()[1])
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(time.perf_counter() - (start + index / rate))
        finally:
            writer.close()

    await asyncio.gather(producer(), *(connection() for _ in range(connections)))
    latencies.sort()
    return {
        "requests": len(latencies),
        "created": statuses.get(201, 0),
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "achieved": len(latencies) / (time.perf_counter() - start),
    }


async def closed(url: str, seconds: float, *, connections: int, families: str, tag: str) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(10**9))
    start = time.perf_counter()
    end = start + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < end:
                index = next(counter)
                body = (
                    '{"tenant_id":"rate","trace_id":"' + f"{tag}-{index}" + '","correlation_id":"c",'
                    '"outcome":"success","guardrail_decision":"ALLOW","family_versions":' + families + "}"
                ).encode()
                sent = time.perf_counter()
                writer.write(
                    b"POST /api/v1/learning/signals/intake HTTP/1.1\r\nHost: bench\r\n"
                    b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                status = int(status_line.split()[1])
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(time.perf_counter() - sent)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "created": statuses.get(201, 0),
        "other": len(latencies) - statuses.get(201, 0),
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2] * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--families", default='{"runtime.traces":"1.0"}')
    parser.add_argument("--closed", action="store_true", help="a closed loop for --seconds instead of a rate")
    args = parser.parse_args()
    tag = str(time.time_ns())
    if args.closed:
        figures = uvloop.run(
            closed(args.url, args.seconds, connections=args.connections, families=args.families, tag=tag)
        )
        print(json.dumps(figures))
        return
    result = asyncio.run(
        run(
            args.url,
            args.rate,
            args.seconds,
            connections=args.connections,
            families=args.families,
            tag=str(time.time_ns()),
        )
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
