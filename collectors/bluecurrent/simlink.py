"""One client connection of the BlueCurrent simulator: its outgoing queue and its writer.

The writer is the connection's only writer, so a drop never races a send. Frames queued
together leave in one write of whole (unmasked, uncompressed) websocket frames; data frames
are recorded once written, a malformed frame follows every `garbage_every` data frames, and
the connection drops after `drop_every` of them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from collectors.bluecurrent.simdata import GARBAGE

if TYPE_CHECKING:
    from collectors.bluecurrent.simulator import BlueCurrentSimulator

__all__ = ["CLOSE_4001", "HIGH_WATER", "Link", "run_sender", "text_frame"]

HIGH_WATER = 256
LOW_WATER = 64
CLOSE_4001 = "close 4001"
BATCH = 512


def text_frame(text: str) -> bytes:
    """An unmasked websocket text frame (server to client, no extensions)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 65536:
        head = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return head + payload


@dataclass(eq=False)
class Link:
    """One client connection: its outgoing queue and counters."""

    ws: ServerConnection
    queue: asyncio.Queue[tuple[str, dict | None, bool]] = field(default_factory=asyncio.Queue)
    queued_pushes: int = 0
    room: asyncio.Event = field(default_factory=asyncio.Event)
    data_frames: int = 0
    busy: bool = False
    grid_requests: int = 0
    pushing: asyncio.Task[None] | None = None


async def run_sender(sim: BlueCurrentSimulator, link: Link) -> None:
    """The only writer of a connection (so a drop never races a send). Frames queued
    together leave in one write of whole websocket frames."""
    while True:
        batch = [await link.queue.get()]
        while len(batch) < BATCH and not link.queue.empty():
            batch.append(link.queue.get_nowait())
        if link.queue.qsize() <= LOW_WATER:
            link.room.set()
        link.busy = True
        try:
            if not await _send_batch(sim, link, batch):
                return
        finally:
            link.busy = False


async def _send_batch(
    sim: BlueCurrentSimulator, link: Link, batch: list[tuple[str, dict | None, bool]]
) -> bool:
    """Send queued frames; data frames are recorded, followed by garbage every
    `garbage_every`, and the connection drops after `drop_every`. False: it is over."""
    opts, out = sim.options, bytearray()
    records: list[tuple[dict, bool]] = []
    for frame, data, push in batch:
        if push:
            link.queued_pushes -= 1
        if data is None and frame == CLOSE_4001:
            if await _write(sim, link, out, records):
                await link.ws.close(4001, "Request limit reached")
            return False
        out += text_frame(frame)
        if data is None:
            continue
        records.append((data, push))
        link.data_frames += 1
        if opts.garbage_every and link.data_frames % opts.garbage_every == 0:
            out += text_frame(GARBAGE[sim.garbage_sent % len(GARBAGE)])
            sim.garbage_sent += 1
        if (
            opts.drop_every
            and link.data_frames >= opts.drop_every
            and (opts.drop_limit is None or sim.drops < opts.drop_limit)
        ):
            if await _write(sim, link, out, records):
                sim.drops += 1
                await _drop(sim, link)
            return False
    return await _write(sim, link, out, records)


async def _write(
    sim: BlueCurrentSimulator, link: Link, out: bytearray, records: list[tuple[dict, bool]]
) -> bool:
    """Write whole frames to the socket, record the data frames among them, and wait while
    the socket's buffer is full (flow control). False when the connection is gone."""
    ws = link.ws
    if ws.protocol.state is not State.OPEN or ws.transport.is_closing():
        return False
    if out:
        ws.transport.write(bytes(out))
    sim.sent_count += len(records)
    for data, push in records:
        if sim.options.record:
            sim.sent.append(data)
        if push:
            sim.pushed += 1
    if sim.options.push_total and sim.pushed >= sim.options.push_total:
        sim.push_done.set()
    try:
        await ws.drain()
    except ConnectionClosed:
        return False
    return True


async def _drop(sim: BlueCurrentSimulator, link: Link) -> None:
    """End the connection as `drop_mode` says: "eof" sends a TCP FIN without a close frame
    and reads on (so in-flight client requests do not draw a reset), "close_frame" closes
    with code 1011, "abort" resets at once (what a crash looks like)."""
    mode, ws = sim.options.drop_mode, link.ws
    if mode == "close_frame":
        if link.pushing is not None:
            link.pushing.cancel()
        await ws.close(1011, "dropped by the simulator")
    elif mode == "abort":
        ws.transport.abort()
    elif ws.transport.can_write_eof():
        ws.transport.write_eof()
    else:
        ws.transport.close()
