# The wheel cache that scripts/install_horovod.sh and scripts/build_gluonnlp.sh fill (one directory
# per package under $MX_TRAINING_CACHE) and docker/build.py reads. Sourced by both scripts after they
# cd to the repository root.

# cached_wheel DIR NAME VERSION: the path of a NAME-VERSION wheel in DIR, or nothing.
cached_wheel() {
    ls "$1/$2-$3"-*.whl 2>/dev/null | head -1 || true
}

# cache_stripped PYTHON WHEEL DIR WORK: put a copy of WHEEL into DIR with the debug info of its
# extensions stripped (the installed packages shrink a lot) and print its path; fails when it is not
# there. PYTHON has the `wheel` package; WORK is a scratch directory.
cache_stripped() {
    local python=$1 built=$2 dir=$3 work=$4
    "$python" -m wheel unpack -d "$work/unpacked" "$built" >/dev/null
    find "$work/unpacked" -name '*.so' -exec strip --strip-debug {} +
    mkdir -p "$dir"
    "$python" -m wheel pack -d "$dir" "$work"/unpacked/* >/dev/null
    ls "$dir/$(basename "$built")"
}
