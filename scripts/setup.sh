#!/usr/bin/env bash
# Installs what the playground and its tests need on a fresh Debian machine: the npm packages from
# the lock file and, for the tests, Debian's Chromium (the e2e browser, whose SwiftShader Vulkan
# driver also gives the Node tests a WebGPU adapter) plus the Vulkan loader.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--with-browser" ]]; then
  if ! [[ -x /usr/bin/chromium && -f /usr/lib/chromium/vk_swiftshader_icd.json ]] || ! ldconfig -p | grep -q 'libvulkan.so.1'; then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium libvulkan1 >/dev/null
  fi
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
