"""Publishing a month's review whole: a lock, a staging folder, one switch, and a journal.

People open ``<reports>/<YYYY-MM>/``; a run never writes there. It builds the month in a
staging folder and, once the index and manifest are written, switches the staging folder in
with one rename, so the published folder always holds the index, manifest and pages of one run
(the previous run's until the switch, the new run's after it)::

    <reports>/<YYYY-MM>/                         the published month
    <reports>/.spm/<YYYY-MM>.lock                held while a run of that month works
    <reports>/.spm/<YYYY-MM>.staging/            the run being built
    <reports>/.spm/<YYYY-MM>.staging/progress.jsonl   one manifest entry per finished report

* **Lock**: an exclusive ``flock`` on the lock file. A second run of the same month is refused
  (:class:`~spm_models.exceptions.ReviewBusyError`) with the first run's process id, host,
  start time and command, which the holder writes into the file. The operating system
  drops the lock when the holder ends, however it ends, so a killed run leaves no stale lock.
* **Staging**: when the published month comes from the same run key (same data, month,
  settings and version) the staging folder starts as hard links to its files, so reports that
  are current are reused without copying; otherwise it starts empty, so nothing of an older
  run is published again. Files in it are only ever *replaced* (written beside and renamed),
  never written into, so a linked file of the published month is never changed.
* **Journal**: every finished report appends its manifest entry to ``progress.jsonl``. A run
  that was interrupted (Ctrl-C, SIGTERM, a kill) leaves its staging folder, and the next run
  with the same key resumes it, redoing only the reports that are missing.
* **Switch**: on Linux ``renameat2(RENAME_EXCHANGE)`` swaps the staging and published folders
  in one atomic step; elsewhere the published folder is renamed aside, the staging folder
  renamed in, and the next run puts the old one back if a crash fell between the two.
* **Clean-up**: temporary files (``*.tmp-*``, half-built ``artifacts.tmp-*``) are removed on
  every exit path. On an error (a full disk included) the staging folder is removed too; on an
  interruption it is kept, cleaned, for the next run to resume.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from spm_models.exceptions import ConfigError, DiskFullError, ReviewBusyError, is_disk_full

__all__ = ["Publication", "STATE_DIR", "free_space", "published_path"]

#: Folder of the reports root holding locks and staging folders (hidden from listings).
STATE_DIR = ".spm"
_JOURNAL = "progress.jsonl"
_STAGING_INFO = "staging.json"
_TEMPORARY = ("*.tmp-*", ".*.tmp-*", ".tmp-*", "artifacts.old-*")


def free_space(path: str | Path) -> str:
    """Free space on the disk holding ``path``, for messages ("12.3 MiB free"), or ""."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return ""
    return f"{usage.free / 2**20:,.1f} MiB free"


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # the kernel or the file system cannot: use two renames
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _link_tree(src: Path, dst: Path) -> None:
    """``dst`` as a tree of hard links to the files of ``src`` (copies where links are refused)."""
    for folder, _dirs, files in os.walk(src):
        rel = Path(folder).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                os.link(Path(folder) / name, dst / rel / name)
            except OSError as exc:
                if is_disk_full(exc):
                    raise
                shutil.copy2(Path(folder) / name, dst / rel / name)


def _remove(path: Path) -> None:
    """Remove a folder tree, a file or a link, whichever ``path`` is (nothing if absent)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()


def _remove_temporary(folder: Path) -> None:
    """Remove what a run killed half-way leaves: temporary files, half-built artifact folders."""
    if not folder.is_dir():
        return
    for pattern in _TEMPORARY:
        for p in folder.rglob(pattern):
            with contextlib.suppress(OSError):
                _remove(p)


class Publication:
    """One run's hold on one month of a reports folder (module docstring).

    Parameters
    ----------
    root : path-like
        The reports folder.
    month : str
        ``YYYY-MM``.
    """

    def __init__(self, root: str | Path, month: str):
        self.root = Path(root)
        self.month = month
        self.published = self.root / month
        self.state = self.root / STATE_DIR
        self.staging = self.state / f"{month}.staging"
        self.lock_file = self.state / f"{month}.lock"
        self._fd: int | None = None
        self.held = False  # whether this run got the lock (it stays True after the release)
        self.resumed = 0

    # ------------------------------------------------------------------ lock

    def _acquire(self) -> None:
        import fcntl

        try:
            self.state.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFullError(f"the disk holding {self.root} is full ({free_space(self.root)})") from exc
            raise ConfigError(f"cannot write to the reports folder {self.root}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 4096).decode("utf-8", "replace")
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ConfigError(f"cannot lock {self.lock_file}: {exc.strerror or exc}") from None
            raise ReviewBusyError(self._busy_message(holder)) from None
        self._fd = fd
        self.held = True
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(["spm", *sys.argv[1:]]) if sys.argv and "spm" in Path(sys.argv[0]).name else "",
        }
        with contextlib.suppress(OSError):  # who holds it is for messages only
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)

    def _busy_message(self, holder: str) -> str:
        try:
            info = json.loads(holder)
            who = f"process {info['pid']} on {info['host']}, started {info['started_utc']}"
            if info.get("command"):
                who += f" ({info['command']})"
        except (ValueError, KeyError, TypeError):
            who = "another process"
        return (
            f"another review of {self.month} is running in {self.root}: {who}. This run changed nothing; "
            f"wait for that one to finish (or stop it), then run again"
        )

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    # ------------------------------------------------------------------ staging

    def _recover(self) -> None:
        """Undo a switch a crash cut between its two renames; drop other leftovers."""
        olds = sorted(self.state.glob(f"{self.month}.old-*"))
        if not self.published.exists() and olds:
            os.replace(olds[-1], self.published)
            olds = olds[:-1]
        for old in olds:
            _remove(old)
        _remove_temporary(self.published)
        for name in (_JOURNAL, _STAGING_INFO):  # a switch killed before it tidied up
            _remove(self.published / name)

    def _stage(self, key: str, *, fresh: bool) -> None:
        info = self.staging / _STAGING_INFO
        try:
            kept = json.loads(info.read_text(encoding="utf-8")).get("key")
        except (OSError, ValueError, AttributeError):
            kept = None
        if kept == key and not fresh:
            _remove_temporary(self.staging)
            self.resumed = len(self.recorded())
            return
        _remove(self.staging)
        self.staging.mkdir(parents=True)
        if not fresh and self._published_key() == key:
            _link_tree(self.published, self.staging)
        info.write_text(json.dumps({"key": key, "month": self.month}) + "\n", encoding="utf-8")

    def _published_key(self) -> str | None:
        try:
            return json.loads((self.published / "manifest.json").read_text(encoding="utf-8")).get("key")
        except (OSError, ValueError, AttributeError):
            return None

    @contextlib.contextmanager
    def open(self, key: str, *, fresh: bool = False) -> Iterator[Publication]:
        """Lock the month and prepare the staging folder; clean up however the block ends.

        Parameters
        ----------
        key : str
            The run key (:func:`spm_models.review.artifacts.artifacts_key`): what makes earlier
            work reusable.
        fresh : bool
            Start from an empty staging folder (``--force``).

        Raises
        ------
        ReviewBusyError
            Another run holds the month.
        ConfigError
            The reports folder cannot be written.
        """
        self._acquire()
        interrupted = False
        try:
            try:
                self._recover()
                self._stage(key, fresh=fresh)
            except OSError as exc:
                if is_disk_full(exc):
                    raise DiskFullError(f"the disk holding {self.root} is full ({free_space(self.root)})") from exc
                raise ConfigError(f"cannot prepare the review in {self.staging}: {exc.strerror or exc}") from None
            yield self
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            try:
                if os.path.lexists(self.staging):
                    if interrupted:  # the finished reports are kept for the next run to resume
                        _remove_temporary(self.staging)
                    else:
                        _remove(self.staging)
            finally:
                self._release()

    # ------------------------------------------------------------------ journal

    def record(self, entry: dict) -> None:
        """Append one finished report's manifest entry to the journal (one line, flushed)."""
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False, default=str) + "\n"
        with open(self.staging / _JOURNAL, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()

    def recorded(self) -> dict[str, dict]:
        """Entries the journal holds, by report id (a line cut short by a kill is ignored)."""
        out: dict[str, dict] = {}
        try:
            lines = (self.staging / _JOURNAL).read_text(encoding="utf-8").splitlines()
        except OSError:
            return out
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and "id" in entry:
                out[entry["id"]] = entry
        return out

    # ------------------------------------------------------------------ switch

    def publish(self) -> Path:
        """Switch the staging folder in as the published month; the published folder's path.

        The journal goes only after the switch: a run killed just before it is still resumable.
        """
        _remove_temporary(self.staging)
        if not os.path.lexists(self.published):
            os.rename(self.staging, self.published)
        elif _exchange(self.staging, self.published):
            _remove(self.staging)  # now the previous run
        else:
            aside = self.state / f"{self.month}.old-{os.getpid()}-{time.time_ns()}"
            os.rename(self.published, aside)
            os.rename(self.staging, self.published)
            _remove(aside)
        for name in (_JOURNAL, _STAGING_INFO):
            _remove(self.published / name)
        return self.published


def published_path(path: str | Path) -> Path:
    """Where a path inside a staging folder will be once published (any other path unchanged).

    Reports run against ``<reports>/.spm/<month>.staging/artifacts``; what they record for
    people (the manifest, the provenance table of each page) names
    ``<reports>/<month>/artifacts``, where the files are once the run is published.
    """
    p = Path(path)
    parts = p.parts
    for i in range(len(parts) - 1):
        if parts[i] == STATE_DIR and parts[i + 1].endswith(".staging"):
            return Path(*parts[:i], parts[i + 1].removesuffix(".staging"), *parts[i + 2 :])
    return p
