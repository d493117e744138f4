#!/usr/bin/env bash
# Build llama-cpp-python's wheel once per version, Python and CPU type, into the cache folder,
# and print that folder. PyPI ships only its source; compiling takes ~7 minutes on 2 cores.
# The CPU flags are part of the key because llama.cpp is compiled for the host's instructions.
set -euo pipefail
version=$(sed -n 's/.*"llama-cpp-python\[server\]==\([0-9.]*\)".*/\1/p' pyproject.toml)
python=${PYTHON:-python3}
cache=${SANDBOX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sandbox-eval}
pytag=$("$python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
# llama.cpp's AMX kernels crash on some Sapphire Rapids hosts (ggml-org/llama.cpp#20824: a
# segfault in ggml_backend_amx_mul_mat at the first decode, seen here with Gemma's Q4_K_M), and
# -march=native turns them on. Explicit -mno-amx-* keep them off: GCC lets explicit ISA flags
# win over -march whatever their order. The flags are part of the key, so such a wheel is rebuilt
# (and pip's own wheel cache, keyed by the source alone, is bypassed).
extra=""
if grep -qw amx_int8 /proc/cpuinfo; then extra="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"; fi
cpu=$( (grep -m1 '^flags' /proc/cpuinfo; echo "$extra") | sha256sum | cut -c1-12)
dir="$cache/wheels/llama-cpp-python-$version-$pytag-$cpu"
if ! compgen -G "$dir/llama_cpp_python-$version-*.whl" >/dev/null; then
  echo "Building llama-cpp-python $version once (about 7 minutes on 2 cores) into $dir" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  CFLAGS="${CFLAGS:-} $extra" CXXFLAGS="${CXXFLAGS:-} $extra" \
    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "$python" -m pip wheel -q --no-deps --no-cache-dir \
    "llama-cpp-python==$version" -w "$tmp" >&2
  mkdir -p "$dir"
  mv "$tmp"/llama_cpp_python-*.whl "$dir"/
fi
echo "$dir"
