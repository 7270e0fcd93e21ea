"""Ray, and only here: starting it, starting shard servers as actors, and calling them.

Ray is imported on first use, never by ``import tinyembed``. With no address it starts
on this machine (``ray.init()``, nothing to set up) or joins the instance this process is
already connected to; ``address="host:port"`` (or ``"auto"``) joins an existing cluster.

Every call goes to all the servers at once and waits for all of them with a timeout:
a dead actor raises :class:`ShardLostError` naming it as soon as Ray reports it (at
once for a killed process), a silent one :class:`ShardTimeoutError` after ``timeout``
seconds. Nothing waits forever, and after a loss the servers refuse every call at once.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from ..checks import check_number, check_positive, check_positive_int
from .errors import ShardLostError, ShardPlacementError, ShardTimeoutError
from .server import ShardServer

__all__ = ["DEFAULT_NUM_CPUS", "ShardServers", "connect", "ray_session", "require_ray"]

# A shard server mostly waits for requests: a quarter of a CPU each lets 8 fit on 2 cores.
DEFAULT_NUM_CPUS = 0.25


def require_ray():
    """The ``ray`` module, or an ImportError saying how to install it."""
    try:
        import ray  # noqa: PLC0415 - only the distributed tables need Ray
    except ImportError as e:
        raise ImportError("sharded tables run on Ray, which is not installed: pip install 'tinyembed[distributed]'"
                          ) from e
    return ray


def connect(address: str | None = None) -> bool:
    """Make sure this process is connected to Ray; True if this call started it.

    Args:
        address: None: join the instance already running in this process, else start one on
            this machine (no dashboard); ``"host:port"`` or ``"auto"``: join that cluster.
    """
    ray = require_ray()
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    except ConnectionError as e:  # no cluster at that address, or it refused us (a token missing, say)
        raise ConnectionError(f"could not join the Ray cluster at {address}: {e}") from e
    except Exception as e:  # noqa: BLE001 - Ray raises a bare Exception when its processes do not come up
        raise RuntimeError(f"Ray did not start on this machine: {e}") from e
    return True


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[None]:
    """Ray for the length of a block: connected (or started) on entry; shut down on exit only if
    this block started it, so a caller's own Ray session is left as it was."""
    started = connect(address)
    try:
        yield
    finally:
        if started:
            require_ray().shutdown()


_remote_class: Any = None


def _actor_class():
    global _remote_class
    if _remote_class is None:
        # No restarts: a restarted actor would hold empty shards. A lost shard is an error.
        _remote_class = require_ray().remote(max_restarts=0, max_task_retries=0)(ShardServer)
    return _remote_class


class ShardServers:
    """``num_servers`` Ray actors, each a :class:`ShardServer`, and the calls to all of them.

    Args:
        num_servers: how many actors (the planner's devices).
        num_cpus: the CPU share each actor reserves (default 0.25: 8 fit on 2 cores).
        address: the cluster to join (see :func:`connect`).
        timeout: seconds a call may take before :class:`ShardTimeoutError`.
        startup_timeout: seconds the actors may take to start before :class:`ShardPlacementError`.

    Raises:
        ShardPlacementError: the cluster has fewer free CPUs than the actors reserve, or they
            did not start in time; no actor is left running.
    """

    def __init__(self, num_servers: int, *, num_cpus: float = DEFAULT_NUM_CPUS, address: str | None = None,
                 timeout: float = 60.0, startup_timeout: float = 60.0):
        self.num_servers = check_positive_int(num_servers, "num_servers")
        self.num_cpus = check_number(num_cpus, "num_cpus", low=0, low_open=True)
        self.timeout = check_positive(timeout, "timeout")
        check_positive(startup_timeout, "startup_timeout")
        ray = require_ray()
        connect(address)
        needed = self.num_servers * self.num_cpus
        free = _free_cpus(ray, needed)
        if needed > free + 1e-9:
            total = ray.cluster_resources().get("CPU", 0.0)
            raise ShardPlacementError(
                f"{self.num_servers} shard actors of num_cpus={self.num_cpus:g} need {needed:g} CPUs, but Ray has "
                f"{free:g} of {total:g} free: close other tables, or pass a smaller num_cpus")
        actor = _actor_class().options(num_cpus=self.num_cpus)
        self._handles = [actor.remote(i) for i in range(self.num_servers)]
        self.lost: dict[int, str] = {}
        self.owners: dict[int, list[str]] = {}  # server -> what it holds, for error messages
        try:
            self.info = self._call("ping", {i: () for i in range(self.num_servers)}, "start", startup_timeout)
        except (ShardTimeoutError, ShardLostError) as e:
            self.close()
            raise ShardPlacementError(f"the shard actors did not start: {e}") from None

    @property
    def pids(self) -> list[int]:
        """The process id of each server (as they started)."""
        return [self.info[i]["pid"] for i in range(self.num_servers)]

    def describe(self, index: int) -> str:
        held = ", ".join(self.owners.get(index, [])) or "no shards"
        info = self.info[index] if hasattr(self, "info") else {}
        where = f"pid {info['pid']} on {info['host']}" if info else "not started"
        return f"server {index} ({where}; holds {held})"

    def call(self, method: str, payloads: dict[int, Any], what: str) -> dict[int, Any]:
        """``method(payload)`` on each server of ``payloads``, all in flight at once (a tuple
        payload is the method's arguments).

        Returns:
            server -> result. Raises :class:`ShardLostError` / :class:`ShardTimeoutError`
            naming the servers (and what they hold), or the actor's own exception.
        """
        if self.lost:
            first = min(self.lost)
            raise ShardLostError(f"{what}: {self.lost[first]} (lost earlier); restore the table from a checkpoint")
        return self._call(method, payloads, what, self.timeout)

    def _call(self, method: str, payloads: dict[int, Any], what: str, timeout: float) -> dict[int, Any]:
        ray = require_ray()
        from ray.exceptions import RayActorError, RayTaskError  # noqa: PLC0415

        refs = {i: getattr(self._handles[i], method).remote(*(p if isinstance(p, tuple) else (p,)))
                for i, p in payloads.items()}
        # A dead actor's ref is ready at once (holding the error), so this waits for the slowest
        # live server, and never longer than the timeout.
        _, pending = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout)
        out, dead = {}, []
        for i, ref in refs.items():
            if ref in pending:
                continue
            try:
                out[i] = ray.get(ref)
            except RayActorError as e:
                dead.append(i)
                self.lost[i] = f"{self.describe(i)} died: {_first_line(e)}"
            except RayTaskError as e:
                raise e.as_instanceof_cause() from None
        if dead:
            raise ShardLostError(f"{what}: " + "; ".join(self.lost[i] for i in dead)
                                 + ". Its rows are gone: load the last checkpoint (ShardedEmbedding.load(dir)) "
                                 "or restore the table in place (table.restore(dir))")
        if pending:
            late = [i for i, ref in refs.items() if ref in pending]
            raise ShardTimeoutError(f"{what}: no answer within {timeout:g} s from "
                                    + "; ".join(self.describe(i) for i in late))
        return out

    def replace_lost(self, startup_timeout: float = 60.0) -> list[int]:
        """Start a new, empty actor in place of every lost one (same index and CPU share).

        Returns:
            The indices replaced; their shards must be created and filled again.
        """
        if not self._handles:
            raise RuntimeError("the shard servers are closed")
        ray = require_ray()
        lost = sorted(self.lost)
        actor = _actor_class().options(num_cpus=self.num_cpus)
        for i in lost:
            with contextlib.suppress(Exception):  # the old actor is dead already; make sure
                ray.kill(self._handles[i])
            self._handles[i] = actor.remote(i)
        try:
            self.info.update(self._call("ping", {i: () for i in lost}, "restart", startup_timeout))
        except (ShardTimeoutError, ShardLostError) as e:
            raise ShardPlacementError(f"the replacement actors did not start: {e}") from None
        for i in lost:
            del self.lost[i]
        return lost

    def close(self) -> None:
        """Stop every actor (their shards go with them). Safe to call twice."""
        if not getattr(self, "_handles", None):
            return
        ray = require_ray()
        for handle in self._handles:
            with contextlib.suppress(Exception):  # already dead, or Ray already shut down
                ray.kill(handle)
        with contextlib.suppress(Exception):
            # Return once Ray reports them dead (a call to a killed actor fails at once), so
            # their CPU share is free for the next table; never wait long.
            ray.wait([h.ping.remote() for h in self._handles], num_returns=len(self._handles), timeout=5.0)
        self._handles = []
        self.lost = {i: f"{self.describe(i)} was closed" for i in range(self.num_servers)}

    def __len__(self) -> int:
        return self.num_servers


def _free_cpus(ray, needed: float, wait: float = 2.0) -> float:
    """Ray's free CPUs, waiting up to ``wait`` seconds for ``needed`` (just-closed actors take a
    moment to hand theirs back)."""
    deadline = time.monotonic() + wait
    while True:
        free = ray.available_resources().get("CPU", 0.0)
        if free + 1e-9 >= needed or time.monotonic() > deadline:
            return free
        time.sleep(0.05)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0].rstrip(".") if text else type(error).__name__
