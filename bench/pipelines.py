"""The pipelines the bench sends images to: the seeded car pipeline (id 1), and a copy of it
whose decode step has other params (the `reduce: fast` row), made through the API."""

import os
from typing import Any

import httpx

from devstack.stack import DEV_ADMIN_TOKEN

CAR_PIPELINE_ID = 1


def car_pipeline_with_decode(url: str, name: str, **decode_params: Any) -> int:
    """The id of a pipeline called `name`: the car pipeline's steps with `decode_params` on
    its decode step; created, or brought up to date if a previous run left it behind."""
    token = os.environ.get("PIPELINE_ADMIN_TOKEN") or DEV_ADMIN_TOKEN
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        car = client.get(f"/pipelines/{CAR_PIPELINE_ID}").raise_for_status().json()
        steps = [
            {**step, "params": {**step["params"], **decode_params}}
            if step["type"] == "decode"
            else step
            for step in car["steps"]
        ]
        body = {
            "name": name,
            "description": f"bench: the car pipeline, decode {decode_params}",
            "steps": steps,
        }
        existing = [
            p for p in client.get("/pipelines").raise_for_status().json() if p["name"] == name
        ]
        if existing:
            answer = client.put(f"/pipelines/{existing[0]['id']}", json=body)
        else:
            answer = client.post("/pipelines", json=body)
        return int(answer.raise_for_status().json()["id"])
