"""A notify socket like systemd's, for the tests of sd_notify (test_service.py,
test_deb.py): a unix datagram socket whose path goes in NOTIFY_SOCKET, and a
thread that keeps every message pgcutover sends, in order."""

import os
import socket
import threading
import time

from proxyutil import SLOW


class NotifySocket:
    """A datagram socket like systemd's notify socket, with a reader thread
    that keeps every message received, in order."""

    def __init__(self, directory):
        """Binds DIRECTORY/notify.sock, writable by any user (pgcutover may run as its own)."""
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode()))

    def all(self):
        with self.lock:
            return [m for _, m in self.messages]

    def wait_for(self, pred, timeout, start=0, what="message"):
        """The index of the first message from `start` on for which pred holds."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            msgs = self.all()
            for i in range(start, len(msgs)):
                if pred(msgs[i]):
                    return i
            assert time.monotonic() < deadline, f"no {what} within {timeout}s; got {msgs}"
            time.sleep(0.02)

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()


def fields(message):
    """'READY=1\\nSTATUS=...' as {'READY': '1', 'STATUS': '...'}."""
    return dict(line.split("=", 1) for line in message.split("\n") if "=" in line)
