#!/usr/bin/env bash
# Three requests to a running stack (`make run` or `docker compose up`); prints each answer.
#
#   ./requests.sh [IMAGE]          IMAGE defaults to samples/parking_1280x720.jpg
#
# PIPELINE_URL (default http://127.0.0.1:8000) and PIPELINE_ID (default 1) choose the target.
# Exits non-zero if any answer is not a 200.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
image="${1:-$here/samples/parking_1280x720.jpg}"
url="${PIPELINE_URL:-http://127.0.0.1:8000}"
pipeline_id="${PIPELINE_ID:-1}"

command -v curl >/dev/null || { echo "requests.sh: curl is needed" >&2; exit 2; }
[[ -f "$image" ]] || { echo "requests.sh: no such file: $image" >&2; exit 2; }

body="$(mktemp)"
trap 'rm -f "$body"' EXIT
failed=0
for n in 1 2 3; do
    status="$(curl -sS -o "$body" -w '%{http_code}' \
        -F "image=@\"${image}\"" "${url}/process_image?pipeline_id=${pipeline_id}")" || true
    echo "request ${n}: POST ${url}/process_image?pipeline_id=${pipeline_id} -> HTTP ${status:-000}"
    cat "$body"
    echo
    [[ "$status" == 200 ]] || failed=1
done
exit "$failed"
