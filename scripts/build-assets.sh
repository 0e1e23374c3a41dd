#!/usr/bin/env bash
# The console's front-end assets (docs/console.md): installs the versions pinned in
# web-assets/package-lock.json from the npm registry and copies the minified files into the
# package, where they are committed, so a fresh clone runs without npm. Run it after changing
# web-assets/package.json (`make assets`); nothing is loaded from the internet at run time.
set -euo pipefail
cd "$(dirname "$0")/../web-assets"
npm ci --no-audit --no-fund --silent
vendor=../src/lienwatch/web/static/vendor
mkdir -p "$vendor"
cp node_modules/htmx.org/dist/htmx.min.js "$vendor/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$vendor/htmx.LICENSE"
version=$(node -p 'require("htmx.org/package.json").version')
echo "htmx.org $version" > "$vendor/VERSIONS"
echo "assets: htmx.org $version copied into src/lienwatch/web/static/vendor/"
