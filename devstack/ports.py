"""Is a TCP port free to listen on? Checked before anything starts, so a second stack fails
at once with a sentence instead of a half-started stack and a traceback."""

import socket

from devstack.errors import StackError


def ensure_free(host: str, port: int, what: str, option: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Like uvicorn: a port in TIME_WAIT is free; a listening socket is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StackError(
                f"port {port} on {host} ({what}) is already in use ({error.strerror}). "
                f"Is the stack already running? Stop it (Ctrl-C in its terminal) "
                f"or pick another port with {option}."
            ) from None
