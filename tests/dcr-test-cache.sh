# dcr-test-cache.sh — sourced by the shell tests.
# private_cache DIR: points XDG_CACHE_HOME (dcr's feature and pipeline
# caches) at DIR, which starts empty, but keeps the suite's shader caches: a
# cold Mesa cache recompiles every shader, and a cold validation-layer cache
# re-validates every SPIR-V module, a minute or more on 2 cores (several
# under ASan) before the first dispatch.
private_cache() {
  shared="${XDG_CACHE_HOME:-$HOME/.cache}"
  mkdir -p "$1"
  for f in "$shared"/shader_validation_cache*.bin; do
    [ -f "$f" ] && cp "$f" "$1/"
  done
  # Mesa keeps its files in $MESA_SHADER_CACHE_DIR/mesa_shader_cache
  export MESA_SHADER_CACHE_DIR="${MESA_SHADER_CACHE_DIR:-$shared}"
  export XDG_CACHE_HOME="$1"
}
