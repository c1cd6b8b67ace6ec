# Sourced by bench/run.sh and bench/serve.sh: pin both engines to one x86 instruction-set level.
#
#   peer_isa_setup ISA HERE OUT   (ISA: avx2 | avxvnni)
#
# hearth gets HEARTH_CPU=ISA (exported). llama.cpp's prebuilt package picks the best
# libggml-cpu-*.so variant next to its library at run time; a copy of bench/node_modules made of
# hard links (no extra space) that keeps only one variant (haswell for avx2, alderlake for
# avxvnni) pins it to that level. Sets peer_dir (run the copied .mjs scripts from there) and
# peer_variant.
peer_isa_setup() {
  local isa="$1" here="$2" out="$3"
  case "$isa" in
    avx2) peer_variant=haswell ;;
    avxvnni) peer_variant=alderlake ;;
    *) echo "--isa must be avx2 or avxvnni" >&2; return 2 ;;
  esac
  export HEARTH_CPU="$isa"
  peer_dir="$out/peer-$isa"
  if [[ ! -f "$peer_dir/.ready" ]]; then
    rm -rf "$peer_dir"
    mkdir -p "$peer_dir"
    cp -al "$here/node_modules" "$peer_dir/node_modules"
    find "$peer_dir/node_modules/@node-llama-cpp" -name 'libggml-cpu-*.so' ! -name "libggml-cpu-$peer_variant.so" -delete
    touch "$peer_dir/.ready"
  fi
  cp "$here"/*.mjs "$here/package.json" "$peer_dir/"  # the scripts as they are now
}
