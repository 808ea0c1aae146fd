#!/usr/bin/env bash
# Sets up a fresh machine and runs every test: the floors check (tools/check-layers.ts), type
# check, lint, unit and GPU kernel tests in Node (WebGPU through Dawn on SwiftShader), and the
# Playwright e2e tests in system Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-browser
npm test
