"""Helpers for replication tests: signed releases, in-process replicators and nodes, Rank traffic."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from node.assignment import AssignmentWatcher
from node.gen.edgerank.v1 import ranker_pb2, ranker_pb2_grpc
from node.server import Node
from node.settings import Settings
from replicator import assignment as assign
from replicator import gates, names, promotions, signing
from replicator.nats_io import connect
from replicator.publish import PublishResult, publish
from replicator.replicate import Replicator, ReplicatorConfig
from tests.node.synthetic_bundle import make_bundle
from trainer.bundle import MANIFEST, write_atomic

SPACE = "synthetic-space"


def release(root: Path, prefix: str, seed: int, ndcg: float = 0.10, **kw: Any) -> Path:
    """A synthetic bundle with a shared embedding space and quality metrics in its manifest."""
    path = make_bundle(root, prefix=prefix, seed=seed, **kw)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest["embedding_space_id"] = SPACE
    manifest["metrics"] = {"warm": {"student": {"ndcg@10": ndcg}}}
    write_atomic(path / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return path


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_async(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(coro_fn())


def hub_call(url: str, fn: Callable[[Any], Any], domain: str | None = "hub") -> Any:
    async def go() -> Any:
        nc = await connect(url, "test", max_reconnect_attempts=1)
        try:
            return await fn(nc.jetstream(domain=domain, timeout=5.0))
        finally:
            await nc.close()

    return run_async(go)


def publish_bundle(url: str, path: Path, key: Path, **gate_kw: Any) -> PublishResult:
    k = signing.load_private(key)
    return hub_call(url, lambda js: publish(js, path, k, gates.GateConfig(**gate_kw), progress=False))


def promote(url: str, region: str, version: str) -> assign.Assignment:
    return update(url, region, lambda a: assign.promote(a, version))


def rollback(url: str, region: str) -> assign.Assignment:
    return update(url, region, assign.rollback)


def update(url: str, region: str, op: Callable[[assign.Assignment], assign.Assignment]) -> assign.Assignment:
    """A compare-and-swap write of ``region``'s promotion state, as the operator commands do."""
    return hub_call(url, lambda js: promotions.update(js, names.PROMOTIONS_BUCKET, region, op, domain="hub"))


class ReplicatorThread:
    """A Replicator on its own event loop in a thread."""

    def __init__(self, config: ReplicatorConfig):
        self.replicator = Replicator(config)
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            self._started.set()
            await self.replicator.run(self._stop)

        try:
            self._loop.run_until_complete(main())
        except BaseException as e:  # reported by stop()
            self.error = e
        finally:
            self._started.set()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    def start(self) -> ReplicatorThread:
        self._thread.start()
        self._started.wait(10)
        return self

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "replicator did not stop"


@contextmanager
def region_node(directory: Path, region: str) -> Iterator[tuple[Node, AssignmentWatcher]]:
    settings = Settings.load({"bundle_dir": directory, "port": 0, "workers": 8, "region": region}, env={})
    node = Node(settings).start(load=False)
    watcher = AssignmentWatcher(node, directory, node_id=f"node-{region}").start()
    try:
        yield node, watcher
    finally:
        watcher.stop()
        node.stop(grace=0)


def serving(node: Node) -> str | None:
    routing = node.holder.routing
    return routing.champion.version if routing else None


@dataclass
class Traffic:
    """Continuous Rank calls against one node; every response's version is recorded."""

    target: str
    users: list[str]
    versions: dict[str, int] = field(default_factory=dict)
    arms: dict[str, int] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    check: Callable[[ranker_pb2.RankResponse], None] | None = None

    def _loop(self, users: list[str]) -> None:
        try:
            with grpc.insecure_channel(self.target) as channel:
                stub = ranker_pb2_grpc.RankerStub(channel)
                while not self.stop.is_set():
                    for user in users:
                        t0 = time.perf_counter()
                        r = stub.Rank(ranker_pb2.RankRequest(user_id=user, num_results=10), timeout=10)
                        self.latencies_ms.append((time.perf_counter() - t0) * 1e3)
                        self.versions[r.bundle_version] = self.versions.get(r.bundle_version, 0) + 1
                        self.arms[r.experiment_arm] = self.arms.get(r.experiment_arm, 0) + 1
                        if self.check is not None:
                            self.check(r)
        except BaseException as e:  # asserted empty by the test
            self.errors.append(e)

    def start(self, threads: int = 2) -> Traffic:
        for j in range(threads):
            t = threading.Thread(target=self._loop, args=(self.users[j::threads],), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    @property
    def count(self) -> int:
        return sum(self.versions.values())


def upload(hub: str, manifest: dict[str, Any], files: dict[str, bytes], key: Path | None) -> str:
    """Put a bundle's objects straight into the hub's store, bypassing the gates (for fault tests)."""
    import hashlib
    import tempfile

    from replicator.nats_io import ensure_hub, put_file

    version = manifest["version"]
    body = signing.sign_manifest(manifest, signing.load_private(key)) if key else manifest

    async def go(js: Any) -> None:
        await ensure_hub(js)
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in {**files, MANIFEST: json.dumps(body).encode()}.items():
                path = Path(tmp) / name.replace("/", "_")
                path.write_bytes(data)
                await put_file(
                    js, names.object_name(version, name), path, hashlib.sha256(data).hexdigest(), lambda _: None
                )

    hub_call(hub, go)
    return str(version)


def bundle_contents(path: Path, version: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A bundle's manifest (renamed to ``version``, unsigned) and file contents."""
    manifest = json.loads((path / MANIFEST).read_text())
    manifest.pop("signature", None)
    manifest["version"] = version
    return manifest, {name: (path / name).read_bytes() for name in manifest["files"]}
