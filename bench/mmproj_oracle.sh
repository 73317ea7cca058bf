#!/bin/sh
# mmproj_oracle.sh — compares `gpuwatch fit --mmproj` with llama.cpp's own
# CLIP compute buffer (libmtmd, CPU backend) for projector GGUFs written by
# tests/estimate/mmproj_writer.py. Not part of the test suite: it needs a
# llama.cpp source tree and builds libmtmd (~minutes on 2 cores).
#
# Owns: the one-off build of libmtmd + ggml-cpu (cmake, CPU only,
# GGML_NATIVE=OFF) under $MTMD_BUILD, the driver bench/mmproj_oracle.cpp
# linked against it, and the comparison table it prints.
# Invariants: 1. reads only $LLAMA_SRC, writes only $MTMD_BUILD and $WORK;
# 2. exit status 1 when any figure differs, 0 when all are equal.
#
# Usage: bench/mmproj_oracle.sh BUILD_DIR   (BUILD_DIR holds src/cli/gpuwatch)
# Environment: LLAMA_SRC (default /tmp/llama-src: llama.cpp as bundled by
# node-llama-cpp 3.22.1), MTMD_BUILD (default /tmp/mtmd-build), WORK
# (default a fresh temporary directory).
set -eu
BUILD=${1:?usage: $0 BUILD_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
LLAMA_SRC=${LLAMA_SRC:-/tmp/llama-src}
MTMD_BUILD=${MTMD_BUILD:-/tmp/mtmd-build}
WORK=${WORK:-$(mktemp -d)}
GW=$(cd "$BUILD" && pwd)/src/cli/gpuwatch

if [ ! -f "$MTMD_BUILD/tools/mtmd/libmtmd.a" ]; then
    mkdir -p "$MTMD_BUILD"
    nice cmake -S "$LLAMA_SRC" -B "$MTMD_BUILD" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
        -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TOOLS=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
        -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_MTMD=ON -DLLAMA_OPENSSL=OFF -DGGML_OPENMP=OFF >/dev/null
    nice cmake --build "$MTMD_BUILD" --target mtmd -j2 >/dev/null
fi
ORACLE=$MTMD_BUILD/mmproj_oracle
g++ -O1 -std=c++17 -I"$LLAMA_SRC/tools/mtmd" -I"$LLAMA_SRC/include" -I"$LLAMA_SRC/ggml/include" \
    "$HERE/mmproj_oracle.cpp" -o "$ORACLE" \
    "$MTMD_BUILD/tools/mtmd/libmtmd.a" "$MTMD_BUILD/src/libllama.a" \
    "$MTMD_BUILD/ggml/src/libggml.a" "$MTMD_BUILD/ggml/src/libggml-cpu.a" \
    "$MTMD_BUILD/ggml/src/libggml-base.a" $(find "$MTMD_BUILD/vendor" -name '*.a') -lpthread -ldl

cd "$ROOT/tests/estimate"
python3 model_writer.py "$WORK/llm.gguf" '{"arch": "llama", "n_layer": 2}' >/dev/null
# name preset overrides
cat >"$WORK/cases" <<'EOF'
gemma3-4b gemma3 {}
smolvlm-256m idefics3 {}
idefics3-odd idefics3 {"image_size": 448, "patch_size": 16, "merge": 3}
llava-1.5 mlp {}
qwen2vl-2b qwen2vl {}
qwen25vl-7b qwen25vl {}
qwen25vl-pattern4 qwen25vl {"n_layer": 8, "wa_pattern": 4}
mistral-small-3.1 pixtral {}
pixtral-12b pixtral {"merge": 1, "n_text": 5120}
tiny-gemma3 gemma3 {"n_layer": 1, "image_size": 56, "patch_size": 14, "n_embd": 64, "n_head": 4, "n_ff": 128, "n_text": 96}
tiny-llava mlp {"n_layer": 1, "image_size": 56, "patch_size": 14, "n_embd": 64, "n_head": 4, "n_ff": 128, "n_text": 96}
EOF
status=0
printf '%-20s %-4s %14s %14s %s\n' case fa llama.cpp gpuwatch diff
while read -r name preset over; do
    python3 mmproj_writer.py "$WORK/$name.gguf" "$preset" "$over" >/dev/null
    for fa in on off; do
        want=$("$ORACLE" "$WORK/$name.gguf" "$fa" 2>/dev/null | awk '/^compute/{print $2}')
        got=$("$GW" fit "$WORK/llm.gguf" --cpu -fa "$fa" --mmproj "$WORK/$name.gguf" --json |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["requested"]["host"]["mmproj_compute"])')
        diff=$((got - want))
        [ "$diff" -eq 0 ] || status=1
        printf '%-20s %-4s %14s %14s %s\n' "$name" "$fa" "$want" "$got" "$diff"
    done
done <"$WORK/cases"
exit $status
