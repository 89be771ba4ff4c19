"""Every endpoint against a real Serve application: documented schema, seeded imagination equal to the
model in-process, and clear 4xx answers to bad requests that harm nothing."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import torch

from aime import checkpoints
from aime.client import Client
from aime.models.noise import per_sample_noise
from aime.serve.codec import encode_png


def test_health_model_info_and_openapi(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.url}/readyz").json() == {"status": "ready"}
    info = server.info
    assert info["checkpoint"] == server.checkpoint and info["step"] == 2
    assert (info["image_size"], info["action_dim"], info["task"]) == (32, 6, "cheetah-run")
    assert {"z", "h", "h_prev", "embed"} <= set(info["activations"]) and len(info["config_hash"]) == 16
    assert info["lens_pack"]["lenses"] == 2 and info["limits"]["max_horizon"] == 64
    schema = httpx.get(f"{server.url}/openapi.json").json()
    for path in ("/v1/encode", "/v1/imagine", "/v1/concepts", "/v1/model", "/healthz", "/readyz"):
        assert path in schema["paths"], path
    assert "examples" in json.dumps(schema["components"]["schemas"]["ImagineRequest"])


def test_encode_gives_per_step_activations_from_png_or_lists(server):
    frames, actions, _ = server.inputs(T=5)
    client = Client(server.url)
    features = client.encode(frames, actions)
    assert sorted(features) == server.info["activations"]
    assert all(v.shape[0] == 5 and v.ndim == 2 for v in features.values())
    as_lists = httpx.post(
        f"{server.url}/v1/encode", json={"frames": frames.tolist(), "actions": actions.tolist()}
    ).json()
    for name, value in features.items():
        np.testing.assert_allclose(np.asarray(as_lists["activations"][name]), value, rtol=1e-6, atol=1e-6)
    # The served features are the model's own, computed in-process.
    model = checkpoints.load(server.checkpoint).model
    with torch.no_grad():
        local = model.encode(
            torch.from_numpy(frames.transpose(0, 3, 1, 2).copy())[None],
            torch.from_numpy(actions.astype(np.float32))[None],
            torch.from_numpy(np.arange(5) == 0)[None],
        )
    for name, value in local.items():
        np.testing.assert_allclose(features[name], value[0].numpy(), rtol=1e-4, atol=1e-5)


def test_imagine_is_seeded_and_equals_the_model_in_process(server):
    frames, actions, future = server.inputs(T=4, H=3, seed=1)
    client = Client(server.url)
    first = client.imagine(frames, actions, future, temperature=1.0, seed=11)
    assert first.shape == (3, 32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, client.imagine(frames, actions, future, temperature=1.0, seed=11))
    assert not np.array_equal(first, client.imagine(frames, actions, future, temperature=1.0, seed=12))
    model = checkpoints.load(server.checkpoint).model
    with torch.no_grad(), per_sample_noise([11]):
        local = model.imagine(
            torch.from_numpy(frames.transpose(0, 3, 1, 2).copy())[None],
            torch.from_numpy(actions.astype(np.float32))[None],
            torch.from_numpy(future.astype(np.float32))[None],
            1.0,
        )
    expected = (local[0] * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    # Batched and single-sample kernels may round differently in the last bit: at most one level.
    assert np.abs(first.astype(int) - expected.astype(int)).max() <= 1


def _malformed(server) -> list[tuple[str, dict, int, str]]:
    frames, actions, future = server.inputs(T=3, H=2)
    png = [encode_png(f) for f in frames]
    good = {"context_frames": png, "context_actions": actions.tolist(), "future_actions": future.tolist()}
    small = [encode_png(np.zeros((16, 16, 3), np.uint8))] * 3
    gray = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABc3UBGAAAAABJRU5ErkJggg=="
    json_headers = {"content-type": "application/json"}
    raw = lambda body: {"content": body, "headers": json_headers}  # noqa: E731

    def body(**changes):
        return {"json": good | changes}

    nan = [[float("nan")] * 6] * 3
    return [
        ("malformed JSON", raw(b'{"context_frames": ['), 422, "malformed JSON"),
        ("unknown field", body(colour="red"), 422, "colour: Extra inputs are not permitted"),
        (
            "missing field",
            {"json": {k: v for k, v in good.items() if k != "seed" and k != "future_actions"}},
            422,
            "future_actions",
        ),
        ("NaN action", raw(json.dumps(good | {"context_actions": nan}).encode()), 422, "finite"),
        ("wrong frame size", body(context_frames=small), 422, "16x16 images, expected 32x32"),
        ("not base64", body(context_frames=["%%%"] * 3), 422, "not valid base64"),
        ("base64, not an image", body(context_frames=["aGVsbG8="] * 3), 422, "not a PNG"),
        ("one channel", body(context_frames=[gray] * 3), 422, "mode L, expected RGB"),
        ("no frames", body(context_frames=[]), 422, "empty"),
        ("T mismatch", body(context_actions=actions[:2].tolist()), 422, "2 rows, expected 3"),
        ("action dim", body(future_actions=[[0.0] * 5] * 2), 422, "expected 6 (the model's action_dim)"),
        ("horizon over the limit", body(future_actions=[[0.0] * 6] * 65), 422, "1..64"),
        ("pixel out of range", body(context_frames=[[[[300, 0, 0]] * 32] * 32] * 3), 422, "255"),
        ("negative temperature", body(temperature=-1), 422, "temperature"),
        ("wrong content type", {"content": b"x=1", "headers": {"content-type": "text/plain"}}, 415, "json"),
        ("body over the limit", raw(b" " * (8 * 2**20 + 1)), 413, "max_body_bytes"),
    ]


def test_malformed_requests_get_a_clear_4xx_and_harm_nothing(server):
    import ray
    from ray.util.state import list_actors

    def replicas() -> list[tuple[str, str]]:
        found = list_actors(filters=[("class_name", "=", "ServeReplica:aime:WorldModelServer")])
        return sorted((a.actor_id, a.state) for a in found)

    before = replicas()
    assert ray.is_initialized() and before and all(state == "ALIVE" for _, state in before)
    for name, request, status, message in _malformed(server):
        response = httpx.post(f"{server.url}/v1/imagine", timeout=30, **request)
        assert response.status_code == status, (name, response.status_code, response.text[:300])
        body = response.json()
        assert body["request_id"] and body["request_id"] in response.headers["x-request-id"], name
        assert any(part in body["error"] for part in message.split("|")), (name, body["error"])
    # Nothing was harmed: the same replica answers a valid request.
    frames, actions, future = server.inputs()
    assert Client(server.url).imagine(frames, actions, future, seed=1).shape == (3, 32, 32, 3)
    assert replicas() == before


def test_concepts_are_the_lens_packs_scores_of_the_encoded_frames(server):
    from aime.lenses.pack import LensPack

    assert server.info["concepts"] == ["a@h", "b@z"] and server.info["lens_pack"]["name"] == "test-pack"
    frames, actions, _ = server.inputs(T=5)
    client = Client(server.url)
    scores = client.concepts(frames, actions)
    assert sorted(scores) == ["a@h", "b@z"] and all(v.shape == (5,) for v in scores.values())
    features = {k: torch.from_numpy(v) for k, v in client.encode(frames, actions).items()}
    pack = LensPack.load(server.lens_pack)
    local = pack.named_scores(features)
    for name, value in scores.items():
        np.testing.assert_allclose(value, local[name]["probability"], rtol=1e-4, atol=1e-5)


def test_200_concurrent_requests_all_succeed(server):
    frames, actions, future = server.inputs(T=4, H=3)

    def call(i: int) -> int:
        with Client(server.url, timeout=120) as client:
            if i % 2:
                return len(client.imagine(frames, actions, future, seed=i))
            return len(client.encode(frames, actions)["z"])

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(call, range(200)))
    assert results == [3 if i % 2 else 4 for i in range(200)]


def test_answers_are_counted_by_route_and_status_on_the_metrics_endpoint(server, exported_metrics):
    from aime.run.ray_metrics import SERVE_REQUESTS, exported_name

    assert httpx.get(f"{server.url}/v1/model", timeout=30).status_code == 200
    json_body = {"content": b"{", "headers": {"content-type": "application/json"}, "timeout": 30}
    assert httpx.post(f"{server.url}/v1/imagine", **json_body).status_code == 422  # routed, then refused
    text_body = {"content": b"{}", "headers": {"content-type": "text/plain"}, "timeout": 30}
    assert httpx.post(f"{server.url}/v1/imagine", **text_body).status_code == 415  # refused before routing
    name = exported_name(SERVE_REQUESTS)
    assert exported_metrics(name, route="/v1/model", status="200") >= 1
    assert exported_metrics(name, route="/v1/imagine", status="422") >= 1
    assert exported_metrics(name, route="other", status="415") >= 1


def test_concurrent_requests_share_model_calls_and_report_their_timing(server):
    """32 clients at once: calls batch beyond Serve's default of 5 ongoing requests per ingress (the
    test application's max_batch_size is 8), and every answer says its batch size and times."""
    frames, actions, future = server.inputs(T=4, H=3)
    png = [encode_png(f) for f in frames]
    body = {"context_frames": png, "context_actions": actions.tolist(), "future_actions": future.tolist()}

    def call(_: int) -> httpx.Response:
        return httpx.post(f"{server.url}/v1/imagine", json=body, timeout=120)

    with ThreadPoolExecutor(max_workers=32) as pool:
        responses = list(pool.map(call, range(64)))
    assert all(r.status_code == 200 for r in responses)
    sizes = [int(r.headers["x-aime-batch-size"]) for r in responses]
    assert 6 <= max(sizes) <= 8, sizes
    for response in responses:
        timing = dict(part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
        assert set(timing) == {"model", "wait", "app"}, timing
        assert 0 < float(timing["model"]) <= float(timing["app"]), timing
