#!/usr/bin/env bash
# Installs what council needs from the system, or says exactly what to install.
#   build:   a C/C++ toolchain, CMake and OpenSSL headers (to build llama.cpp), Python's venv,
#            npm (the browser code)
#   browser: Debian's chromium and certutil (libnss3-tools: the phone test puts the stick's CA
#            into a throwaway NSS trust store) for the browser tests
# As root on Debian/Ubuntu it installs with apt-get; otherwise it prints the command and fails.
set -euo pipefail

missing=()
case "${1:-build}" in
  build)
    command -v cmake >/dev/null || missing+=(cmake)
    command -v c++ >/dev/null && command -v make >/dev/null || missing+=(build-essential)
    [ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
    python3 -c "import ensurepip, venv" 2>/dev/null || missing+=(python3-venv)
    command -v npm >/dev/null || missing+=(npm)
    ;;
  browser)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    command -v certutil >/dev/null || missing+=(libnss3-tools)
    ;;
  *) echo "usage: $0 build|browser" >&2; exit 2 ;;
esac

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

echo "council needs: ${missing[*]}" >&2
if command -v apt-get >/dev/null; then
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
else
  echo "install them with your system's package manager (macOS: xcode-select --install; brew install cmake openssl)" >&2
fi
exit 1
