#!/bin/sh
# Writes the types nfcron follows from the official client's declarations
# to `api-client.extract.d.ts`, for the version pinned in `VERSION`:
#   tests/data/northflank-js-client/extract.sh
# To bump the pin, write the new version into VERSION, run this script and
# `cargo test --test it official_types::`: the test prints every
# difference the new types bring that is not on its allow-list.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=$(cat "$here/VERSION")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@northflank/js-client@$version" >/dev/null && tar xzf northflank-js-client-*.tgz)
types="$work/package/dist/esm/api-client.d.ts"
{
  echo "// Extract of @northflank/js-client@$version dist/esm/api-client.d.ts (made by extract.sh)."
  for t in PutJobCronData ListJobsResult GetJobResult GetJobDeploymentResult GetJobRuntimeenvironmentResult \
           GetJobHealthchecksResult GetJobBuildargumentsResult; do
    awk -v t="type $t = {" 'index($0, t) == 1 {on = 1} on {print} on && /^};/ {exit}' "$types"
  done
} > "$here/api-client.extract.d.ts"
