"""Request and response bodies of the HTTP API. Strict: unknown fields, NaN and infinity are errors.

Frames are either a list of base64 PNG strings (T of them) or nested lists [T][H][W][3] of 0..255.
Actions are [T][A] floats. Shapes against the served model (image size, action dimension, limits)
are checked by ``http.py``, which knows the model.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Byte = Annotated[int, Field(ge=0, le=255)]
Frames = list[str] | list[list[list[list[Byte]]]]
Actions = list[list[float]]

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)

# A 1x1 black PNG: a valid (if tiny) example for the generated docs.
_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC"


class EncodeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"frames": [_PNG, _PNG], "actions": [[0.0] * 6, [0.1] * 6]}]},
    )
    frames: Frames = Field(description="T frames: base64 PNG strings, or [T][H][W][3] uint8 lists")
    actions: Actions = Field(description="[T][A] actions; actions[t] is taken after frames[t]")
    is_first: list[bool] | None = Field(
        default=None, description="[T] episode starts; default: only the first frame starts one"
    )


class EncodeResponse(BaseModel):
    steps: int
    activations: dict[str, list[list[float]]] = Field(description="name -> [T][D] per-step features")


class ConceptScores(BaseModel):
    probability: list[float] = Field(description="[T] the lens's probability that the concept holds")
    graduated: bool = Field(description="the lens met the pack's F1 bar on held-out episodes")


class ConceptsResponse(BaseModel):
    steps: int
    lens_pack: str | None
    concepts: dict[str, ConceptScores] = Field(description="lens (concept@activation) -> per-step scores")


class ImagineRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "context_frames": [_PNG, _PNG],
                    "context_actions": [[0.0] * 6, [0.0] * 6],
                    "future_actions": [[0.5] * 6] * 3,
                    "temperature": 1.0,
                    "seed": 7,
                }
            ]
        },
    )
    context_frames: Frames = Field(description="Tc observed frames: base64 PNG strings or uint8 lists")
    context_actions: Actions = Field(description="[Tc][A]; the last leads into the first imagined frame")
    future_actions: Actions = Field(description="[H][A]; future_actions[k] follows imagined frame k")
    temperature: float = Field(default=1.0, ge=0.0, le=10.0, description="prior temperature; 0: its mode")
    seed: int = Field(default=0, ge=0, lt=2**63, description="the same seed gives the same frames")


class ImagineResponse(BaseModel):
    horizon: int
    seed: int
    frames: list[str] = Field(description="H predicted frames, base64 PNG")


class ModelInfo(BaseModel):
    checkpoint: str
    step: int
    config_hash: str
    task: str
    image_size: int
    action_dim: int
    activations: list[str]
    concepts: list[str]
    lens_pack: dict[str, Any] | None
    limits: dict[str, int]


class ErrorResponse(BaseModel):
    error: str
    request_id: str
    detail: list[dict[str, str]] | None = None
