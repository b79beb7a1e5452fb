"""Who may change pipelines: `Authorization: Bearer <PIPELINE_ADMIN_TOKEN>`.

401 without a token, 403 with a wrong one, 403 for everyone while no token is configured.
Reading and processing stay open.
"""

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pipeline_service.api.dependencies import RuntimeDep, get_runtime
from pipeline_service.errors import AdminDisabled, AdminTokenMissing, AdminTokenWrong

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="PipelineAdminToken",
    description="The value of PIPELINE_ADMIN_TOKEN; needed to create, change or delete pipelines.",
)


async def require_admin(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    expected = runtime.settings.pipeline_admin_token
    if expected is None:
        raise AdminDisabled()
    if credentials is None:
        raise AdminTokenMissing()
    # Bytes, so a non-ASCII token is compared too (compare_digest refuses non-ASCII str).
    if not secrets.compare_digest(
        credentials.credentials.encode(), expected.get_secret_value().encode()
    ):
        raise AdminTokenWrong()


def needs_admin(route: object) -> bool:
    """Whether a route is guarded by `require_admin`."""
    return any(d.dependency is require_admin for d in getattr(route, "dependencies", ()))


async def ensure_admin(request: Request) -> None:
    """`require_admin` for a request that failed validation: FastAPI parses a JSON body before
    it runs dependencies, so without this a client with no token would be told what is wrong
    with its body (422) instead of 401."""
    await require_admin(get_runtime(request), await bearer(request))
