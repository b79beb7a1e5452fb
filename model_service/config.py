"""Model service settings, from MODEL_* environment variables."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from service_kit.settings import ServiceSettings


class ModelSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MODEL_", env_file=".env", extra="ignore")

    detection_probability: float = Field(
        0.5, ge=0, le=1, description="Chance that an image gets the prepared box."
    )
    seed: int | None = Field(None, description="Seed of the draw, for repeatable answers.")
    box: tuple[float, float, float, float, float, int] = Field(
        (412.0, 288.0, 186.0, 121.0, 0.87, 1),
        description="The prepared box [top_left_x, top_left_y, w, h, conf, label].",
    )
    latency_ms: float = Field(0, ge=0, description="Added delay before each answer.")
    failure_rate: float = Field(0, ge=0, le=1, description="Share of requests answered 500.")
    bad_answer_rate: float = Field(
        0, ge=0, le=1, description="Share of requests answered 200 with a body that is not boxes."
    )
