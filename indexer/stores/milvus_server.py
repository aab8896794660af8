"""Serve a milvus-lite file on 127.0.0.1, so that several processes can use one store.

milvus-lite embedded (``milvus:PATH.db``) lets one process at a time open the file. To
share it, one process serves it — ``python -m indexer serve --store milvus:PATH.db`` — and
every user names ``--store http://127.0.0.1:PORT``. The server listens on the loopback
interface only: milvus-lite does not check credentials, so it must never face a network.

:func:`serve` is a context manager (start, wait until it answers, stop, and kill its
process if it does not stop); :func:`main` serves until Ctrl-C. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from indexer.errors import ConfigError, IndexLockedError, IndexWriteError
from indexer.stores import milvus as _m

LOOPBACK = ("127.0.0.1", "localhost")
START_TIMEOUT = 20.0  # seconds for the server to answer
STOP_TIMEOUT = 5.0  # seconds for it to stop after SIGTERM (then SIGKILL)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """In the server's process, before exec: end when the process that started it ends
    (Linux), so a killed parent leaves no server listening."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _answers(uri: str, timeout: float) -> bool:
    pm = _m._pymilvus()
    try:
        client = pm.MilvusClient(uri=uri, timeout=timeout)
    except Exception:  # noqa: BLE001 - not yet
        return False
    try:
        client.list_collections(timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - not yet
        return False
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _db_path(db_path: str | os.PathLike[str]) -> Path:
    raw = os.fspath(db_path)
    return _m.lite_path(raw if raw.startswith("milvus:") else f"milvus:{raw}")


@contextlib.contextmanager
def serve(db_path: str | os.PathLike[str], port: int | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the milvus-lite file ``db_path`` (see :func:`_serving`); yield its URI."""
    with _serving(db_path, port, host) as (uri, _):
        yield uri


@contextlib.contextmanager
def _serving(db_path: str | os.PathLike[str], port: int | None, host: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Serve the milvus-lite file ``db_path`` (``PATH.db`` or ``milvus:PATH.db``; created
    when missing) on ``host`` (127.0.0.1 only) and ``port`` (a free one by default); yield
    its URI, ``http://127.0.0.1:PORT``; stop the server on exit.

    Raises:
        ConfigError: a host that is not the loopback interface, a bad file name, a port in use.
        IndexLockedError: another process has the file open.
        IndexWriteError: the server did not start or did not answer in time.
    """
    if host not in LOOPBACK:
        raise ConfigError(f"milvus-lite checks no credentials, so it is served on 127.0.0.1 only; got host {host!r}.")
    host = "127.0.0.1"
    path = _db_path(db_path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexWriteError(f"Cannot create the folder of {path} ({exc}).") from exc
    resolved = str(path.absolute().resolve())
    if _m.open_here(path):
        raise IndexLockedError(f"This process already has the milvus-lite file {path} open"
                               + (f" (served at {_m._SERVED[resolved]})" if resolved in _m._SERVED else "")
                               + "; close it first.")
    if path.exists() and _m.open_elsewhere(path):
        raise IndexLockedError(_in_use(path))
    if port is None:
        port = free_port(host)
    elif not 0 < port < 65536:
        raise ConfigError(f"A port is 1 to 65535; got {port}.")
    elif _port_taken(host, port):
        raise ConfigError(f"Port {port} on {host} is in use; choose another (or leave it out: a free one is used).")
    with _m.quiet_lite():
        from milvus_lite.server import Server

    class _Server(Server):  # type: ignore[misc, valid-type]
        """milvus-lite's Server, started so that it ends with this process (Linux)."""

        owns_lock = False

        def start(self) -> bool:
            import fcntl

            self._lock_fd = open(self._lock_path, "a")
            try:
                fcntl.lockf(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lock_fd.close()
                self._lock_fd = None
                return False
            self.owns_lock = True
            env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH")}
            env["LD_LIBRARY_PATH"] = f"{self._bin_path}:{os.environ.get('LD_LIBRARY_PATH', '')}"
            env["DYLD_LIBRARY_PATH"] = env["LD_LIBRARY_PATH"]
            env["GLOG_log_dir"] = str(_m.lite_log_dir(Path(self._db_file)))  # not /tmp
            # Its own session: a Ctrl-C in the terminal reaches this process, which stops the
            # server in order, not the server directly.
            self._p = subprocess.Popen(self.args, env=env, cwd=str(self._work_dir), stdin=subprocess.DEVNULL,
                                       start_new_session=True,
                                       preexec_fn=_die_with_parent if die_with_parent else None)
            return True

        def stop(self) -> None:
            if self.owns_lock:  # Server.stop deletes the lock file, even another process's
                self.owns_lock = False
                super().stop()

    # PR_SET_PDEATHSIG fires when the *thread* that started the child ends: only from the
    # main thread (a server started from another thread ends with the process, normally).
    die_with_parent = sys.platform.startswith("linux") and _main_thread()
    address = f"{host}:{port}"
    server = _Server(str(path), address=address)
    if not server.init():
        raise IndexWriteError("milvus-lite is installed without its server program; reinstall it: "
                              "pip install --force-reinstall 'milvus-lite==2.5.1'")
    if not server.start():
        if _m.open_elsewhere(path):
            raise IndexLockedError(_in_use(path))
        raise IndexWriteError(f"milvus-lite could not start on {path}.")
    uri = f"http://{address}"
    _m._SERVED[resolved] = uri
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server._p.poll() is not None:
                raise IndexWriteError(f"milvus-lite stopped while starting on {path} (exit status "
                                      f"{server._p.returncode}): is the file a milvus-lite database?")
            if _answers(uri, 1.0):
                break
            if time.monotonic() > deadline:
                raise IndexWriteError(f"milvus-lite did not answer at {uri} within {START_TIMEOUT:.0f} s.")
            time.sleep(0.1)
        yield uri, server._p
    finally:
        _m._SERVED.pop(resolved, None)
        _stop(server)


def _in_use(path: Path) -> str:
    running = _m.lite_processes(path)
    served = [address for _, address in running if not address.startswith("unix:")]
    if served:
        return f"The milvus-lite file {path} is already served at http://{served[0]}: use that."
    who = f" (milvus-lite pid {', '.join(str(pid) for pid, _ in running)})" if running else ""
    return (f"The milvus-lite file {path} is open in another process{who}: stop that process (or use the server "
            "it may already be running), then serve the file again.")


def _stop(server: object) -> None:
    """SIGTERM, wait, SIGKILL (by pid) if need be; release the file lock."""
    proc: subprocess.Popen[bytes] | None = getattr(server, "_p", None)
    if proc is not None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=STOP_TIMEOUT)
        server._p = None  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        server.stop()  # type: ignore[attr-defined]  # unlocks and removes the lock file


def main(db_path: str | os.PathLike[str], port: int | None = None, host: str = "127.0.0.1", *,
         out: object = None) -> int:
    """Serve ``db_path`` until Ctrl-C (or SIGTERM); the exit status (0: stopped on request,
    1: the server ended by itself, 130: interrupted while starting or stopping)."""
    stream = out if out is not None else sys.stdout
    stopping = {"now": False}

    def on_term(signum: int, frame: object) -> None:
        stopping["now"] = True

    previous = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
    try:
        with _serving(db_path, port, host) as (uri, proc):
            try:
                path = _db_path(db_path)
                print(f"Serving milvus:{path} at {uri} (127.0.0.1 only). Use --store {uri} in every program that "
                      "shares it. Press Ctrl-C to stop.", file=stream, flush=True)  # type: ignore[arg-type]
                while not stopping["now"]:
                    time.sleep(0.2)
                    if proc.poll() is not None and not stopping["now"]:
                        print(f"The milvus-lite server ended by itself (exit status {proc.returncode}).",
                              file=sys.stderr, flush=True)
                        return 1
            except KeyboardInterrupt:
                pass
            print("Stopping…", file=stream, flush=True)  # type: ignore[arg-type]
        return 0
    except KeyboardInterrupt:  # while starting or stopping (the server is stopped all the same)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover - python -m indexer.stores.milvus_server PATH.db [PORT]
    if len(sys.argv) not in (2, 3):
        print("usage: python -m indexer.stores.milvus_server PATH.db [PORT]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else None))
