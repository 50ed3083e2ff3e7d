"""systemd notification protocol (sd_notify) without libsystemd.

`Notifier` sends `READY=1`, `STATUS=…`, `STOPPING=1`, `RELOADING=1` and `WATCHDOG=1`
datagrams to `$NOTIFY_SOCKET` (abstract socket when it starts with "@"); without the
variable every call is a no-op, so the daemon runs the same outside systemd. The watchdog
interval comes from `$WATCHDOG_USEC`: pinging from an event-loop task proves the loop runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

__all__ = ["Notifier"]


class Notifier:
    """Talks to systemd when started by it."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        self.watchdog_s = int(usec) / 1_000_000 if usec.isdigit() and int(usec) > 0 else None
        pid = env.get("WATCHDOG_PID", "")
        if pid and pid != str(os.getpid()):  # the watchdog is another process's (sd_notify(3))
            self.watchdog_s = None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *states: str) -> None:
        if not self._address:
            return
        with (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
            contextlib.suppress(OSError),  # systemd went away: nothing useful to do
        ):
            sock.sendto("\n".join(states).encode(), self._address)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def reloading(self) -> None:
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    async def watchdog(self) -> None:
        """Ping the watchdog at half its interval for as long as the loop runs."""
        if self.watchdog_s is None or not self._address:
            return
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_s / 2)
