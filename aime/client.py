"""A small Python client for ``aime serve``: the same calls as the HTTP API, numpy in and out.

    from aime.client import Client
    client = Client("http://127.0.0.1:8000")
    client.model()                                      # {"step", "image_size", "action_dim", ...}
    features = client.encode(frames, actions)           # frames (T, S, S, 3) uint8 -> {"z": (T, D), ...}
    predicted = client.imagine(frames, actions, future_actions, seed=7)   # (H, S, S, 3) uint8

Frames travel as PNG. Errors come back as ``ClientError`` with the server's message and request id.
Imports neither Ray nor torch.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np

from aime.serve.codec import decode_png, encode_png


class ClientError(RuntimeError):
    def __init__(self, status: int, message: str, request_id: str | None):
        super().__init__(f"HTTP {status}: {message} (request id {request_id})")
        self.status, self.message, self.request_id = status, message, request_id


class Client:
    def __init__(self, url: str = "http://127.0.0.1:8000", timeout: float = 60.0):
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def model(self) -> dict[str, Any]:
        return self._call("GET", "/v1/model")

    def encode(
        self, frames: np.ndarray, actions: np.ndarray, is_first: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """frames (T, S, S, 3) uint8, actions (T, A) -> {name: (T, D) float32}."""
        body: dict[str, Any] = {"frames": _pngs(frames), "actions": np.asarray(actions, np.float64).tolist()}
        if is_first is not None:
            body["is_first"] = np.asarray(is_first, bool).tolist()
        reply = self._call("POST", "/v1/encode", body)
        return {name: np.asarray(v, np.float32) for name, v in reply["activations"].items()}

    def imagine(
        self,
        context_frames: np.ndarray,
        context_actions: np.ndarray,
        future_actions: np.ndarray,
        *,
        temperature: float = 1.0,
        seed: int = 0,
    ) -> np.ndarray:
        """Predicted frames (H, S, S, 3) uint8."""
        body = {
            "context_frames": _pngs(context_frames),
            "context_actions": np.asarray(context_actions, np.float64).tolist(),
            "future_actions": np.asarray(future_actions, np.float64).tolist(),
            "temperature": temperature,
            "seed": seed,
        }
        reply = self._call("POST", "/v1/imagine", body)
        return np.stack([decode_png(f, f"frames[{i}]") for i, f in enumerate(reply["frames"])])

    def concepts(self, frames: np.ndarray, actions: np.ndarray) -> dict[str, np.ndarray]:
        """{lens (concept@activation): (T,) probabilities} from the served lens pack."""
        body = {"frames": _pngs(frames), "actions": np.asarray(actions, np.float64).tolist()}
        reply = self._call("POST", "/v1/concepts", body)
        return {name: np.asarray(s["probability"], np.float32) for name, s in reply["concepts"].items()}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400:
            try:
                error = response.json()
            except ValueError:
                error = {"error": response.text}
            raise ClientError(response.status_code, error.get("error", ""), error.get("request_id"))
        return response.json()


def _pngs(frames: np.ndarray) -> list[str]:
    frames = np.asarray(frames)
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[3] == 3, (
        frames.dtype,
        frames.shape,
    )
    return [encode_png(f) for f in frames]
