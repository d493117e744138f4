"""vllm: specs: the folder check, the manifest hash, and the container the docker sandbox would
start on a GPU host (these machines have no GPU, so the spec itself is what is tested)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sandbox.backends import VllmSpec, parse_model_spec, prepare_model
from sandbox.backends.vllm import OFFLINE, VLLM_IMAGE, folder_manifest_sha256
from sandbox.chat import Sampling
from sandbox.errors import ModelSpecError, SandboxStartError
from sandbox.isolation.docker import DockerServer
from sandbox.isolation.select import NamespaceIsolation


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-llm"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


def _container_spec(
    folder: Path, allow_startup_egress: bool = False, gpus: str = "all"
) -> dict[str, object]:
    model = prepare_model(VllmSpec(path=folder), Sampling(seed=3), 1, allow_startup_egress)
    assert model.command is not None
    sandbox = SimpleNamespace(
        container=SimpleNamespace(id="sinkid"),
        run_id="r1",
        name="m0",
        close=lambda: None,
        etc_mounts=lambda: [],
    )
    image = model.command.image
    server = DockerServer(model.command, folder.parent / "log", sandbox, image, gpus)  # type: ignore[arg-type]
    try:
        return server._spec()
    finally:
        server.close()


def test_parse_vllm_needs_a_model_folder(model_folder: Path, tmp_path: Path) -> None:
    assert parse_model_spec(f"vllm:{model_folder}") == VllmSpec(path=model_folder.resolve())
    with pytest.raises(ModelSpecError, match="no config.json"):
        parse_model_spec(f"vllm:{tmp_path / 'empty'}")


def test_folder_manifest_hash_changes_with_any_file(model_folder: Path) -> None:
    before = folder_manifest_sha256(model_folder)
    assert before == folder_manifest_sha256(model_folder)
    (model_folder / "tokenizer.json").write_text("{}")
    assert folder_manifest_sha256(model_folder) != before


def test_vllm_container_gets_gpus_offline_env_and_full_hardening(model_folder: Path) -> None:
    spec = _container_spec(model_folder)
    [request] = spec["device_requests"]  # type: ignore[misc]
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu"]]
    env = spec["environment"]
    assert all(env[k] == "1" for k in OFFLINE)  # type: ignore[index]
    argv = spec["command"]
    assert argv[:3] == ["vllm", "serve", "/models/tiny-llm"]  # type: ignore[index]
    assert "--uds" in argv and "/run/model/model.sock" in argv  # type: ignore[operator]
    assert spec["network_mode"] == "container:sinkid"
    assert spec["user"] == "65534:65534" and spec["cap_drop"] == ["ALL"]
    assert spec["security_opt"] == ["no-new-privileges"] and spec["read_only"] is True
    model_mount = [m for m in spec["mounts"] if m["Target"] == "/models/tiny-llm"]  # type: ignore[attr-defined]
    assert model_mount and model_mount[0]["ReadOnly"] is True
    assert spec["shm_size"] == "8g" and spec["mem_limit"] == "64g"
    assert spec["log_config"]["Config"] == {"max-size": "16m", "max-file": "1"}  # type: ignore[index]


def test_vllm_container_gets_only_the_gpus_named(model_folder: Path) -> None:
    [request] = _container_spec(model_folder, gpus="0,2")["device_requests"]  # type: ignore[misc]
    assert request["DeviceIDs"] == ["0", "2"] and request["Count"] == 0


def test_allow_startup_egress_turns_the_offline_variables_off(model_folder: Path) -> None:
    env = _container_spec(model_folder, allow_startup_egress=True)["environment"]
    assert all(env[k] == "0" for k in OFFLINE)  # type: ignore[index]


def test_vllm_provenance_and_image(model_folder: Path) -> None:
    model = prepare_model(VllmSpec(path=model_folder), Sampling(), 1)
    assert model.provenance.backend == "vllm"
    assert model.provenance.file_sha256 == folder_manifest_sha256(model_folder)
    assert model.command is not None and model.command.image == VLLM_IMAGE


def test_namespace_isolation_refuses_gpu_servers(model_folder: Path, tmp_path: Path) -> None:
    model = prepare_model(VllmSpec(path=model_folder), Sampling(), 1)
    with pytest.raises(SandboxStartError, match="needs GPUs"):
        NamespaceIsolation().make_server(model, tmp_path, "m0", "r1")
