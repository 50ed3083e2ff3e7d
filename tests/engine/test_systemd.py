"""The sd_notify client: addresses, watchdog interval, and silence outside systemd."""

from __future__ import annotations

import os
import socket
import uuid

from daemon.systemd import Notifier


def test_watchdog_interval_and_owner() -> None:
    """WATCHDOG_USEC sets the interval, unless WATCHDOG_PID names another process."""
    base = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "3000000"}
    assert Notifier(base).watchdog_s == 3.0
    assert Notifier({**base, "WATCHDOG_PID": str(os.getpid())}).watchdog_s == 3.0
    assert Notifier({**base, "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_s is None
    assert Notifier({**base, "WATCHDOG_USEC": "0"}).watchdog_s is None
    assert Notifier({**base, "WATCHDOG_USEC": "soon"}).watchdog_s is None


def test_notify_sends_one_datagram_per_call_to_an_abstract_socket() -> None:
    """States of one call arrive together, newline-separated, on the '@' abstract address."""
    name = f"chargeflux-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.enabled
        notifier.ready("2 sources; outbox 0 points")
        assert server.recv(4096) == b"READY=1\nSTATUS=2 sources; outbox 0 points"
        notifier.stopping()
        assert server.recv(4096) == b"STOPPING=1"


def test_without_notify_socket_everything_is_a_no_op() -> None:
    """Outside systemd the notifier is disabled and never raises."""
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_s is None
    notifier.ready("x")
    notifier.notify("WATCHDOG=1")


def test_a_vanished_socket_is_ignored() -> None:
    """A notify socket that no longer exists does not break the daemon."""
    Notifier({"NOTIFY_SOCKET": f"/tmp/chargeflux-missing-{uuid.uuid4().hex}"}).ready("x")
