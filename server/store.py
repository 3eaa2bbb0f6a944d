"""Durable state under the data directory: `JobStore` (SQLite, WAL) for jobs, `FileStore` for uploads
(named by content hash) and results (PNG layers per job)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path

JOB_FIELDS = ("job_id", "seq", "file_id", "num_layers", "resolution", "status", "submitted_at", "started_at",
              "finished_at", "queue_s", "inference_s", "batch_size", "cached", "error", "result_job_id",
              "runs", "source")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT UNIQUE NOT NULL,
    file_id TEXT NOT NULL,
    num_layers INTEGER NOT NULL,
    resolution INTEGER NOT NULL,
    status TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    queue_s REAL,
    inference_s REAL,
    batch_size INTEGER,
    cached INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    result_job_id TEXT,
    runs INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT 'api'
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, seq);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(file_id, num_layers, resolution, status, finished_at);
CREATE TABLE IF NOT EXISTS files (
    file_id TEXT PRIMARY KEY, width INTEGER, height INTEGER, size_bytes INTEGER, created_at REAL
);
"""


class StorageError(Exception):
    """The data directory cannot hold the server's state (read-only, full, or not a directory)."""


def check_data_dir(root: Path, min_free_mb: float) -> None:
    """Fail at start, with one clear message, when the data directory cannot be written or is (nearly)
    full, instead of failing later on every request."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{uuid.uuid4().hex[:8]}"
        try:
            with open(probe, "wb") as f:
                f.write(b"x" * 4096)
                f.flush()
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
        stat = os.statvfs(root)
    except OSError as err:
        raise StorageError(f"data directory {root} is not writable: {err.strerror or err} "
                           f"(errno {err.errno})") from None
    free_mb = stat.f_bavail * stat.f_frsize / (1024 * 1024)
    if free_mb < min_free_mb:
        raise StorageError(f"data directory {root} has {free_mb:.1f} MB free, below the {min_free_mb:g} MB "
                           f"the server needs (--min-free-mb)")


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    """Jobs in SQLite. One connection shared by the event loop and the worker threads behind a lock:
    every statement is a few microseconds, so a lock is simpler than a connection per thread."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL is durable across a process kill (WAL is on disk); only an OS crash can lose the tail.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def _exec(self, sql: str, args=()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- files
    def add_file(self, file_id: str, width: int, height: int, size_bytes: int) -> None:
        self._exec("INSERT OR IGNORE INTO files VALUES (?,?,?,?,?)", (file_id, width, height, size_bytes, time.time()))

    def get_file(self, file_id: str) -> dict | None:
        row = self._exec("SELECT * FROM files WHERE file_id=?", (file_id,)).fetchone()
        return dict(row) if row else None

    # --- jobs
    def add_job(self, file_id: str, num_layers: int, resolution: int, *, source: str = "api",
                cached_from: dict | None = None) -> dict:
        job_id, now = new_job_id(), time.time()
        if cached_from:
            self._exec("INSERT INTO jobs (job_id,file_id,num_layers,resolution,status,submitted_at,started_at,"
                       "finished_at,queue_s,inference_s,batch_size,cached,result_job_id,source) "
                       "VALUES (?,?,?,?, 'completed', ?,?,?, 0, 0, 0, 1, ?, ?)",
                       (job_id, file_id, num_layers, resolution, now, now, now,
                        cached_from["result_job_id"] or cached_from["job_id"], source))
        else:
            self._exec("INSERT INTO jobs (job_id,file_id,num_layers,resolution,status,submitted_at,source) "
                       "VALUES (?,?,?,?, 'queued', ?, ?)", (job_id, file_id, num_layers, resolution, now, source))
        return self.get(job_id)

    def get(self, job_id: str) -> dict | None:
        row = self._exec("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return dict(row) if row else None

    def find_cached(self, file_id: str, num_layers: int, resolution: int, ttl_s: float) -> dict | None:
        if ttl_s <= 0:
            return None
        row = self._exec("SELECT * FROM jobs WHERE file_id=? AND num_layers=? AND resolution=? AND status='completed' "
                         "AND finished_at>=? ORDER BY finished_at DESC LIMIT 1",
                         (file_id, num_layers, resolution, time.time() - ttl_s)).fetchone()
        return dict(row) if row else None

    def queued_in_order(self) -> list[dict]:
        return [dict(r) for r in self._exec("SELECT * FROM jobs WHERE status='queued' ORDER BY seq")]

    def requeue_running(self) -> int:
        """At start-up: a job left `running` by a killed process is queued again (at its old place)."""
        return self._exec("UPDATE jobs SET status='queued', started_at=NULL WHERE status='running'").rowcount

    def mark_running(self, job_ids: list[str], started_at: float, batch_size: int) -> None:
        with self._lock:
            for jid in job_ids:
                self._db.execute("UPDATE jobs SET status='running', started_at=?, queue_s=?-submitted_at, "
                                 "batch_size=?, runs=runs+1 WHERE job_id=? AND status='queued'",
                                 (started_at, started_at, batch_size, jid))

    def finish(self, job_id: str, status: str, finished_at: float, inference_s: float | None,
               error: str | None = None) -> bool:
        """Running → completed/failed, once: the WHERE makes a second completion impossible."""
        cur = self._exec("UPDATE jobs SET status=?, finished_at=?, inference_s=?, error=?, result_job_id=? "
                         "WHERE job_id=? AND status='running'",
                         (status, finished_at, inference_s, error, job_id if status == "completed" else None, job_id))
        return cur.rowcount == 1

    def count_by_status(self) -> dict[str, int]:
        return {r["status"]: r["n"] for r in self._exec("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")}


class FileStore:
    """Uploads as `uploads/<sha256>` (stored once per content) and results as `results/<job_id>/layer_i.png`.
    Both are written under a temporary name and renamed into place; the temporary names are below."""

    UPLOAD_TMP = "*.tmp*"  # uploads/<sha256>.tmp<hex>
    RESULT_TMP = ".*"  # results/.<job_id>.<hex>/

    def __init__(self, root: Path):
        self.uploads = root / "uploads"
        self.results = root / "results"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.results.mkdir(parents=True, exist_ok=True)
        self.removed_at_start = self.remove_temporaries()

    def remove_temporaries(self) -> int:
        """Remove what a killed process left half-written (a kill skips every `finally`). Run at start
        only: one server owns a data directory (JobStore.requeue_running assumes it too), so no
        temporary file is in use then. Returns how many were removed."""
        stale = [*self.uploads.glob(self.UPLOAD_TMP), *self.results.glob(self.RESULT_TMP)]
        for path in stale:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return len(stale)

    @staticmethod
    def content_id(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def upload_path(self, file_id: str) -> Path:
        return self.uploads / file_id

    def put_upload(self, file_id: str, data: bytes) -> None:
        path = self.upload_path(file_id)
        if path.exists():
            return
        tmp = path.with_suffix(f".tmp{uuid.uuid4().hex[:8]}")
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)  # whatever failed (a full disk, an interrupt), no partial upload stays

    def result_dir(self, job_id: str) -> Path:
        return self.results / job_id

    def layer_paths(self, job_id: str) -> list[Path]:
        d = self.result_dir(job_id)
        return sorted(d.glob("layer_*.png"), key=lambda p: int(p.stem.split("_")[1])) if d.is_dir() else []

    def put_layers(self, job_id: str, layers: list) -> None:
        """Write to a temporary directory and rename it into place, so a result is whole or absent."""
        final = self.result_dir(job_id)
        tmp = self.results / f".{job_id}.{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for i, layer in enumerate(layers):
                # zlib level 1: on noisy layers it is ~1.5-2x faster than the default 6 for a few % more bytes;
                # encoding is server overhead on every job, the bytes only cross loopback or one network hop.
                layer.save(tmp / f"layer_{i}.png", compress_level=1)
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone after the rename; else a failed save's leftovers
