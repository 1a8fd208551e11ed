#!/usr/bin/env bash
# Installs the Bluesky reference server (@atproto/dev-env, pinned in package-lock.json) into node_modules here,
# once: a stamp holding the lock file's hash makes later runs return at once.
#
# The dev-env needs Node.js 22; the machine's Node may be older. The lock file pins node-linux-<arch> (the
# official Node 22 build, shipped as an npm package with its headers), so the install runs in two steps:
# fetch everything without running install scripts, then build the native modules (better-sqlite3) with
# that Node and its headers, so nothing is downloaded outside the npm registry.
#
# Without npm it fails when CI=true and otherwise prints why the Bluesky e2e tests will be skipped.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.care-console-installed
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	if [ "${CI:-}" = "true" ]; then
		echo "install.sh: npm is missing; CI needs it for the Bluesky e2e tests" >&2
		exit 1
	fi
	echo "install.sh: npm is missing; the Bluesky e2e tests will be skipped" >&2
	exit 0
fi
echo "Installing the Bluesky reference server (@atproto/dev-env) into tests/e2e/bluesky/node_modules ..."
rm -f "$stamp"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
node_dir=""
for arch in x64 arm64; do
	if [ -x "node_modules/node-linux-$arch/bin/node" ]; then
		node_dir="$PWD/node_modules/node-linux-$arch"
	fi
done
if [ -z "$node_dir" ]; then
	echo "install.sh: no Node.js 22 build for $(uname -m) in node_modules" >&2
	exit 1
fi
PATH="$node_dir/bin:$PATH" npm_config_nodedir="$node_dir" npm rebuild --loglevel=error
echo "$want" > "$stamp"
