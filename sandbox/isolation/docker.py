"""The `docker` sandbox (DESIGN.md §4.1–4.2): the production path, and the one GPU hosts use.

A sink container with no network builds the dead-end link and NAT rules in its own namespace;
the model container joins that namespace with every capability dropped, no new privileges, a
read-only root, pid and memory limits, a non-root user and the model mounted read-only, and is
reached over a Unix socket in a bind-mounted folder. Every container carries the label
`org.sandbox.run`; they are removed at the end, on error, on Ctrl-C and at exit, and
`sandbox cleanup` removes what a killed run left. This is the only importer of the docker SDK.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from sandbox import __version__
from sandbox.backends.client import ChatClient
from sandbox.backends.prepare import LLAMA_IMAGE_REPO
from sandbox.backends.server import FETCH_CODE, ServerCommand, log_tail, wait_until_healthy
from sandbox.egress import Capture, EgressEvent
from sandbox.errors import MissingDependencyError, SandboxStartError
from sandbox.isolation import jail
from sandbox.isolation.events import READY_TIMEOUT, EventFile, WindowedEgress
from sandbox.isolation.sockets import SocketFolder, write_private

RUN_LABEL, OWNER_LABEL = "org.sandbox.run", "org.sandbox.owner-pid"
CONTAINER_UID = 65534
MAX_LOG_BYTES = 16 << 20  # read of a container's log: a flood must not fill the harness
VLLM_MEMORY = os.environ.get("SANDBOX_VLLM_MEMORY", "64g")
SINK_IMAGE = f"localhost/sandbox-sink:{__version__}"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the `sandbox` package folder
IN_CONTAINER = {
    "python": "/opt/venv/bin/python",
    "socket": "/run/model/model.sock",
    "dir": "/run/config",
}
_LIVE: set[Any] = set()  # containers this process started and has not removed yet
_CLIENTS: list[Any] = []  # clients this process used, to find untracked leftovers at exit


def default_llama_image() -> str:
    """The llama.cpp server image for the installed llama-cpp-python version."""
    from importlib import metadata

    try:
        return f"{LLAMA_IMAGE_REPO}:{metadata.version('llama-cpp-python')}"
    except metadata.PackageNotFoundError:
        return f"{LLAMA_IMAGE_REPO}:latest"


def docker_client() -> Any:
    """A client for the local daemon; SandboxStartError when none answers."""
    try:
        import docker
    except ImportError as exc:
        raise MissingDependencyError("docker", "docker") from exc
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        _CLIENTS.append(client)
    except docker.errors.DockerException as exc:
        raise SandboxStartError(
            f"no Docker daemon answers: {exc}", hint="Start dockerd, or use --isolation namespace."
        ) from exc
    return client


def image_id(client: Any, tag: str) -> str:
    """The id of a local image (never pulled); '' when it is missing."""
    import docker

    try:
        return str(client.images.get(tag).id)
    except docker.errors.ImageNotFound:
        return ""


def daemon_facts(prefix: str) -> tuple[str, list[str], list[str]] | str:
    """(version, runtimes, image tags starting with `prefix`), or why no daemon answers."""
    try:
        import docker
    except ImportError:
        return "the docker SDK is not installed (pip install 'sandbox-eval[docker]')"
    try:
        client = docker.from_env(timeout=5)
    except docker.errors.DockerException as exc:
        return f"no Docker daemon answers ({exc})"
    try:
        info: dict[str, Any] = client.info()
        version = str(client.version().get("Version", "?"))
        tags = sorted(t for i in client.images.list() for t in i.tags if t.startswith(prefix))
    except docker.errors.DockerException as exc:
        return f"no Docker daemon answers ({exc})"
    finally:
        client.close()
    return version, sorted(info.get("Runtimes", {})), tags


def run_command(
    sandbox: DockerSandbox,
    image: str,
    argv: list[str],
    timeout_s: float | None,
    binds: list[tuple[str, bool]],
    out: TextIO,
) -> int:
    """Run a command in a hardened container in the sandbox; its output to `out`; its status.

    `binds` are (host path, writable) pairs mounted at the same path; 124 when `timeout_s` ran out.
    """
    from docker.types import Mount

    mounts = [Mount(path, path, type="bind", read_only=not writable) for path, writable in binds]
    container = sandbox.client.containers.run(
        image,
        command=argv,
        detach=True,
        mounts=[*mounts, *sandbox.etc_mounts()],
        tmpfs={"/tmp": "size=64m"},
        pids_limit=512,
        **hardening(sandbox),
    )
    track(container)
    import requests  # the docker SDK's transport: its wait() time-out is a requests error

    try:
        result = container.wait(timeout=timeout_s)
        return int(result.get("StatusCode", 1))
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
        return 124
    finally:
        _copy_log(container, out)
        remove_container(container)


def _copy_log(container: Any, out: TextIO) -> None:
    """The container's output, at most MAX_LOG_BYTES of it."""
    shown = 0
    stream = container.logs(stream=True, follow=False)
    for chunk in stream:
        out.write(chunk[: MAX_LOG_BYTES - shown].decode(errors="replace"))
        shown += len(chunk)
        if shown >= MAX_LOG_BYTES:
            out.write(f"\n[output cut at {MAX_LOG_BYTES >> 20} MiB]\n")
            break
    stream.close()
    out.flush()


def require_image(client: Any, tag: str) -> None:
    """Never pull: a missing image is an error that says how to build it."""
    if not image_id(client, tag):
        raise SandboxStartError(
            f"the image {tag} is not on this machine.", hint="Build it with `make images`."
        )


def track(container: Any) -> None:
    """Remember a container this process started, so an exit removes it."""
    _LIVE.add(container)


def _labels(run_id: str) -> dict[str, str]:
    return {RUN_LABEL: run_id, OWNER_LABEL: str(os.getpid())}


def remove_container(container: Any) -> None:
    """Remove a container (gone already is fine) and stop tracking it."""
    import docker

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    _LIVE.discard(container)


@atexit.register
def _remove_leftovers() -> None:
    """At exit, remove what this process started, tracked or not.

    A Ctrl-C during `containers.run` can leave a container created but never tracked.
    """
    for container in list(_LIVE):
        remove_container(container)
    for client in _CLIENTS:
        owned = {"label": f"{OWNER_LABEL}={os.getpid()}"}
        for container in client.containers.list(all=True, filters=owned):
            remove_container(container)
        client.close()


class DockerSandbox:
    """A sink container whose network namespace model containers join."""

    def __init__(self, client: Any, run_id: str, workdir: Path, name: str) -> None:
        self.client, self.run_id, self.name = client, run_id, name
        self.workdir = workdir
        self.events = EventFile(workdir / f"{name}-egress.jsonl")
        self.ready_path = workdir / f"{name}-sink.ready"
        self.container: Any = None
        self._etc: Path | None = None  # synthetic resolv.conf and hosts for joining containers

    def start(self) -> None:
        """Start the sink container and wait until its rules are in place."""
        if self.container is not None:
            return
        require_image(self.client, SINK_IMAGE)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ready_path.unlink(missing_ok=True)
        self.container = self.client.containers.run(SINK_IMAGE, **self._spec())
        _LIVE.add(self.container)
        self._wait_ready()

    def _spec(self) -> dict[str, Any]:
        from docker.types import Mount

        return {
            "command": [
                "--events",
                f"/run/sbx/{self.events.path.name}",
                "--ready",
                f"/run/sbx/{self.ready_path.name}",
                "--setup-network",
            ],
            "detach": True,
            "network_mode": "none",
            "cap_drop": ["ALL"],
            "cap_add": ["NET_ADMIN", "NET_RAW"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "tmpfs": {"/tmp": "size=16m"},
            "pids_limit": 1024,  # the sink's bounded handlers (listeners.MAX_CONNECTIONS each)
            "mem_limit": "256m",
            "sysctls": {"net.ipv6.conf.all.disable_ipv6": "0"},
            "mounts": [
                Mount("/opt/sandbox/sandbox", str(PACKAGE_ROOT), type="bind", read_only=True),
                Mount("/run/sbx", str(self.workdir.resolve()), type="bind"),
            ],
            "labels": _labels(self.run_id),
            "name": f"sbx-{self.run_id}-{self.name}-sink",
        }

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.ready_path.exists():
                return
            if not self.is_capturing():
                break
            time.sleep(0.1)
        logs = self.container.logs(tail=30).decode(errors="replace")
        self.close()
        raise SandboxStartError(
            f"the egress sink container did not become ready.\n{logs}", hint="Run `sandbox doctor`."
        )

    def is_capturing(self) -> bool:
        """True while the sink container runs."""
        if self.container is None:
            return False
        self.container.reload()
        return bool(self.container.status == "running")

    def take_events(self, until: float | None = None) -> tuple[list[EgressEvent], Capture]:
        """Events up to `until` (default now), and whether the sink's record of them is whole."""
        return self.events.take(until, self.is_capturing)

    def etc_mounts(self) -> list[Any]:
        """Read-only mounts of a synthetic resolv.conf and hosts: no host resolver or names."""
        from docker.types import Mount

        if self._etc is None:
            self._etc = jail.write_etc(Path(tempfile.mkdtemp(prefix="sbx-etc-")), CONTAINER_UID)
            self._etc.chmod(0o755)
        return [
            Mount(f"/etc/{name}", str(self._etc / name), type="bind", read_only=True)
            for name in ("resolv.conf", "hosts")
        ]

    def close(self) -> None:
        """Remove the sink container."""
        if self.container is not None:
            remove_container(self.container)
            self.container = None
        if self._etc is not None:
            shutil.rmtree(self._etc, ignore_errors=True)
            self._etc = None


class DockerServer(WindowedEgress):
    """A model server container inside a DockerSandbox's namespace."""

    sandbox: DockerSandbox

    def __init__(
        self,
        command: ServerCommand,
        log_path: Path,
        sandbox: DockerSandbox,
        image: str,
        gpus: str = "all",
    ) -> None:
        self.gpus = gpus
        self.command, self.log_path, self.sandbox, self.image = command, log_path, sandbox, image
        self._sockets = SocketFolder()
        self.socket_path = self._sockets.connect_path
        self._config = Path(tempfile.mkdtemp(prefix="sbx-conf-"))
        self._config.chmod(0o755)  # root's; the container reads it, never writes it
        self._client = ChatClient.over_socket(self.socket_path, command.model_name)
        self.container: Any = None

    @property
    def client(self) -> ChatClient:
        """A client connected over the socket."""
        return self._client

    def start(self) -> None:
        """Start the sandbox (once), then the server container, and wait until it answers."""
        self.sandbox.start()
        self.stop()
        require_image(self.sandbox.client, self.image)
        self.container = self.sandbox.client.containers.run(self.image, **self._spec())
        _LIVE.add(self.container)
        self._wait_healthy()

    def _spec(self) -> dict[str, Any]:
        """The container's settings: hardening, mounts, and GPUs when the server needs them."""
        from docker.types import LogConfig, Mount

        places = dict(IN_CONTAINER)
        self._sockets.renew(CONTAINER_UID)
        mounts = [
            Mount("/run/model", str(self._sockets.path), type="bind"),
            Mount("/run/config", str(self._config), type="bind", read_only=True),
            *self.sandbox.etc_mounts(),
        ]
        if self.command.model is not None:
            places["model"] = f"/models/{self.command.model.name}"
            mounts.append(
                Mount(
                    places["model"], str(self.command.model.resolve()), type="bind", read_only=True
                )
            )
        argv, env, files = self.command.render(places)
        for name, text in files.items():
            write_private(self._config / name, text)
        spec: dict[str, Any] = {
            "command": argv,
            "environment": env,
            "detach": True,
            "tmpfs": {"/tmp": "size=256m"},
            "pids_limit": 512,
            "mem_limit": "8g",
            "mounts": mounts,
            "log_config": LogConfig(
                type="json-file", config={"max-size": f"{MAX_LOG_BYTES >> 20}m", "max-file": "1"}
            ),
            **hardening(self.sandbox),
            "name": f"sbx-{self.sandbox.run_id}-{self.sandbox.name}-model-{time.time_ns()}",
        }
        if self.command.gpus:  # vLLM: the GPUs named, shared memory for its workers, threads
            spec["device_requests"] = [gpu_request(self.gpus)]
            spec.update(shm_size="8g", pids_limit=4096, mem_limit=VLLM_MEMORY)
            spec["tmpfs"] = {"/tmp": "size=16g"}
        return spec

    def _wait_healthy(self) -> None:
        """Wait for the socket (locking its folder), then for the server to answer."""
        self._sockets.wait(self, CONTAINER_UID, self.command.start_timeout)
        wait_until_healthy(self, self.socket_path, self.command.start_timeout, self.log_path)

    def is_alive(self) -> bool:
        """True while the container runs."""
        if self.container is None:
            return False
        self.container.reload()
        return bool(self.container.status == "running")

    def describe_exit(self) -> str:
        """Exit status and the container log's last lines."""
        if self.container is None:
            return "Model server not running."
        self.container.reload()
        code = self.container.attrs.get("State", {}).get("ExitCode")
        tail = self._save_log()
        return f"Model server container exit status {code}; last log lines:\n{tail}"

    def _save_log(self) -> str:
        """Copy the container's log to log_path, at most MAX_LOG_BYTES; its last lines."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as out:
            if self.container is not None:
                stream = self.container.logs(stream=True, follow=False)
                written = 0
                for chunk in stream:
                    out.write(chunk[: MAX_LOG_BYTES - written])
                    written += len(chunk)
                    if written >= MAX_LOG_BYTES:
                        out.write(b"\n[log cut at %d MiB]\n" % (MAX_LOG_BYTES >> 20))
                        break
                stream.close()
        return log_tail(self.log_path)

    def fetch(self, url: str) -> str:
        """An HTTP GET from inside the model container (same namespace, same hardening)."""
        if self.container is None:
            return "fetch failed: the model container is not running"
        python = IN_CONTAINER["python"]
        code, output = self.container.exec_run([python, "-c", FETCH_CODE, url], user="65534")
        return bytes(output).decode(errors="replace").strip()[-600:]

    def stop(self) -> None:
        """Remove the server container (its log is kept in log_path)."""
        if self.container is not None:
            self._save_log()
            remove_container(self.container)
            self.container = None

    def close(self) -> None:
        """Remove the containers and the socket folder."""
        self.stop()
        self.sandbox.close()
        self._client.close()
        self._sockets.remove()
        shutil.rmtree(self._config, ignore_errors=True)


def gpu_request(gpus: str) -> Any:
    """The GPUs a vLLM container gets: `all`, or the listed ids (`0,1`)."""
    from docker.types import DeviceRequest

    if gpus == "all":
        return DeviceRequest(count=-1, capabilities=[["gpu"]])
    ids = [part.strip() for part in gpus.split(",") if part.strip()]
    return DeviceRequest(device_ids=ids, capabilities=[["gpu"]])


def hardening(sandbox: DockerSandbox) -> dict[str, Any]:
    """What every container that joins a sandbox gets: its namespace and no privileges."""
    return {
        "network_mode": f"container:{sandbox.container.id}",
        "user": "65534:65534",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "labels": _labels(sandbox.run_id),
    }


def cleanup(client: Any, run_id: str | None = None) -> list[str]:
    """Remove containers of dead runs (owner process gone), or of one run; their names."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": RUN_LABEL}):
        labels = container.labels
        owner = int(labels.get(OWNER_LABEL, "0") or 0)
        if (run_id is None and not _is_running(owner)) or labels.get(RUN_LABEL) == run_id:
            removed.append(container.name)
            remove_container(container)
    return removed


def _is_running(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
