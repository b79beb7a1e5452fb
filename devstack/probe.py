"""Does a URL answer 200? (is a service up, is a replica ready)"""

import http.client
import urllib.request

_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def answers(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with _no_proxy.open(url, timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        return False
