#!/bin/sh
# Installs the Debian 12 packages luapoold needs to build and run (and with
# --tests, to run make check), only those that are missing.  Uses sudo when
# not root.
#   scripts/install-deps.sh [--tests]
set -eu
# python3-jsonschema, python3-yaml: tests/http/openapi_check.py validates
# docs/openapi.yaml and the daemon's answers; groff-base renders the man
# pages in tests/install.sh; npm (with node) fetches the OpenAPI validator
# and schema for make check-openapi.
packages="build-essential pkg-config libluajit2-5.1-dev luajit2 libmicrohttpd-dev
libcjson-dev curl"
if [ "${1:-}" = --tests ]; then
	packages="$packages check jq openssl python3-jsonschema python3-yaml groff-base"
	command -v npm >/dev/null 2>&1 || packages="$packages npm"
fi
missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# luajit2 conflicts with Debian's plain luajit: replace it if present.
$sudo apt-get install -y -q $missing
