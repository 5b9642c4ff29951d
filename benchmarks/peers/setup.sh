#!/usr/bin/env bash
# Create one pinned virtual environment per peer deconvolution method.
#
#   bash benchmarks/peers/setup.sh                 # every peer
#   bash benchmarks/peers/setup.sh dtangle tape    # some peers
#
# Peers: dtangle rnasieve tape bayesprism scaden scpdeconv decode_research rectanglepy autogenes deconv
# Venvs go to $DECODE_OMICS_PEER_VENVS/<peer> (default benchmarks/.peers/venvs/<peer>, git-ignored).
# Sources of the two GitHub-only peers go to $DECODE_OMICS_PEER_VENVS/../src/<peer> (default benchmarks/.peers/src):
#   SCPDECONV_SRC=/path/to/clone        a local clone of TencentAILabHealthcare/scpDeconv (else git clone from GitHub)
#   DECODE_RESEARCH_SRC=/path/to/clone  a local clone of forceworker/DECODE (else git clone from GitHub)
# The source is copied and patched (CPU, matplotlib, seeds; see benchmarks/peers/patches/*.sh).
# DECODE_OMICS_PEER_UNLOCKED=1 installs the direct pins only (requirements/<peer>.txt), without the lock files.
# PYTHON selects the interpreter for the venvs (default python3.11, else python3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH="$(dirname "$HERE")"
VENVS="${DECODE_OMICS_PEER_VENVS:-$BENCH/.peers/venvs}"
SRC_ROOT="${DECODE_OMICS_PEER_SRC:-$(dirname "$VENVS")/src}"
PY="${PYTHON:-$(command -v python3.11 || command -v python3)}"
REQ="$HERE/requirements"

SCPDECONV_URL="https://github.com/TencentAILabHealthcare/scpDeconv.git"
SCPDECONV_COMMIT="052335317cd3cf813253195438666249ba0452bd"
DECODE_RESEARCH_URL="https://github.com/forceworker/DECODE.git"
DECODE_RESEARCH_COMMIT="a88c9d1c8ed033112addf5eb86eb56c74677cd8f"

ALL=(dtangle rnasieve tape bayesprism scaden scpdeconv decode_research rectanglepy autogenes deconv)
PEERS=("$@")
[ ${#PEERS[@]} -eq 0 ] && PEERS=("${ALL[@]}")

mkdir -p "$VENVS" "$SRC_ROOT"

make_venv() {  # make_venv NAME -> fresh venv with a current pip
    local dir="$VENVS/$1"
    rm -rf "$dir"
    "$PY" -m venv "$dir"
    pip_in "$1" --upgrade "pip<26" "setuptools<76" wheel
}

req() {  # req PEER -> pip arguments: its direct pins, every other package held to the lock file's versions
    local lock="$REQ/$1.lock.txt"
    if [ -f "$lock" ] && [ -z "${DECODE_OMICS_PEER_UNLOCKED:-}" ]; then
        echo -r "$REQ/$1.txt" -c "$lock"
    else
        echo -r "$REQ/$1.txt"
    fi
}

pip_in() {  # pip_in NAME ARGS...  (drops pip's warnings about this machine's unused local indexes)
    local name="$1"; shift
    "$VENVS/$name/bin/python" -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
    return "${PIPESTATUS[0]}"
}

export_tree() {  # export_tree GITDIR COMMIT DEST: every readable file of COMMIT (snapshots may lack large blobs)
    local gitdir="$1" commit="$2" dest="$3"
    mkdir -p "$dest"
    if git --git-dir="$gitdir" archive "$commit" 2>/dev/null | tar -x -C "$dest" 2>/dev/null; then
        return 0
    fi
    local path mode type obj
    git --git-dir="$gitdir" ls-tree -r "$commit" | while read -r mode type obj path; do
        [ "$type" = blob ] || continue
        mkdir -p "$dest/$(dirname "$path")"
        if ! git --git-dir="$gitdir" cat-file blob "$obj" > "$dest/$path" 2>/dev/null; then
            rm -f "$dest/$path"
            echo "  note: $path is absent from $gitdir (skipped)" >&2
        fi
    done
}

get_source() {  # get_source NAME ENVVAR URL COMMIT -> copies (or clones) the source into $SRC_ROOT/NAME
    local name="$1" var="$2" url="$3" commit="$4" dest="$SRC_ROOT/$1"
    local given="${!var:-}"
    rm -rf "$dest"
    if [ -n "$given" ]; then
        if [ -d "$given/.git" ] || [ -f "$given/HEAD" ]; then
            # a working clone or a bare git directory: export the pinned commit (fall back to HEAD)
            local gitdir="$given"; [ -d "$given/.git" ] && gitdir="$given/.git"
            local rev="$commit"
            if ! git --git-dir="$gitdir" cat-file -e "$commit^{commit}" 2>/dev/null; then
                echo "  note: $commit not in $given; using its HEAD" >&2
                rev=HEAD
            fi
            export_tree "$gitdir" "$rev" "$dest"
        else
            cp -r "$given" "$dest"
        fi
    else
        GIT_LFS_SKIP_SMUDGE=1 git clone -q "$url" "$dest"
        git -C "$dest" checkout -q "$commit"
    fi
}

setup_peer() {
    local peer="$1"
    echo "== $peer -> $VENVS/$peer"
    case "$peer" in
        dtangle | rnasieve | bayesprism | rectanglepy)
            make_venv "$peer"
            pip_in "$peer" $(req "$peer")
            ;;
        autogenes)
            make_venv "$peer"
            pip_in "$peer" "pip<24.1"   # autogenes 1.0.4 declares matplotlib>=3.0.*, which pip >= 24.1 rejects
            pip_in "$peer" $(req "$peer")
            ;;
        tape | deconv)
            make_venv "$peer"
            pip_in "$peer" torch==2.13.0   # first: an unpinned torch pulls a CUDA build
            pip_in "$peer" $(req "$peer")
            ;;
        scaden)
            make_venv "$peer"
            pip_in "$peer" $(req "$peer")
            ;;
        scpdeconv)
            get_source scpdeconv SCPDECONV_SRC "$SCPDECONV_URL" "$SCPDECONV_COMMIT"
            bash "$HERE/patches/scpdeconv.sh" "$SRC_ROOT/scpdeconv"
            make_venv "$peer"
            pip_in "$peer" torch==2.13.0
            pip_in "$peer" $(req "$peer")
            ;;
        decode_research)
            get_source decode_research DECODE_RESEARCH_SRC "$DECODE_RESEARCH_URL" "$DECODE_RESEARCH_COMMIT"
            bash "$HERE/patches/decode_research.sh" "$SRC_ROOT/decode_research"
            make_venv "$peer"
            pip_in "$peer" torch==2.13.0
            pip_in "$peer" $(req "$peer")
            ;;
        *)
            echo "unknown peer '$peer' (known: ${ALL[*]})" >&2
            return 2
            ;;
    esac
    # record what was installed
    "$VENVS/$peer/bin/python" -m pip freeze > "$VENVS/$peer/installed.txt"
    echo "   ok ($(wc -l < "$VENVS/$peer/installed.txt") packages)"
}

status=0
for peer in "${PEERS[@]}"; do
    set +e
    ( set -e; setup_peer "$peer" )  # a subshell, so that `set -e` stops this peer at its first failing step
    rc=$?
    set -e
    if [ $rc -ne 0 ]; then
        echo "!! $peer failed (exit $rc)" >&2
        status=1
    fi
done
exit $status
