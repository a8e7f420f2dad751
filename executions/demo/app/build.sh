#!/bin/sh
# Assemble dist/: the app, a page naming the commit, and the smoke test.
# Usage: sh build.sh <commit id>
set -eu
commit="${1:-unknown}"
rm -rf dist
mkdir -p dist
cp -R shop smoke_test.py dist/
find dist -name __pycache__ -prune -exec rm -rf {} +
printf '%s\n' "$commit" > dist/REVISION
cat > dist/index.html <<HTML
<!doctype html>
<title>Demo shop</title>
<h1>Demo shop</h1>
<p>Built from commit <code>$commit</code>.</p>
HTML
echo "PackageRevision=$commit" >> "${CONVEYOR_OUTPUT:-/dev/null}"
echo "dist/ holds $(find dist -type f | wc -l) files for $commit"
