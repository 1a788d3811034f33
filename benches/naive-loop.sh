#!/usr/bin/env bash
# The loop a team writes without nfcron: PUT every manifest, every time
# (run from cron each minute). Bodies are the manifests' specs as JSON, one
# file each (a team would convert the YAML with yq). Used by
# `cargo bench --bench side_by_side` as the baseline nfcron is measured
# against.
#
# usage: naive-loop.sh BODIES_DIR   (NORTHFLANK_API_URL, NORTHFLANK_API_TOKEN, PROJECT)
set -euo pipefail
dir=$1
for body in "$dir"/*.json; do
  curl -sS -o /dev/null --fail-with-body -X PUT \
    -H "Authorization: Bearer ${NORTHFLANK_API_TOKEN}" \
    -H "Content-Type: application/json" \
    --data @"$body" \
    "${NORTHFLANK_API_URL}/v1/projects/${PROJECT}/jobs/cron"
done
