#!/usr/bin/env python3
"""Build the CPU or GPU training image.

    python docker/build.py --flavor cpu --tag mx-training-toolkit:cpu
    python docker/build.py --flavor gpu --tag mx-training-toolkit:gpu --base-image nvidia/cuda:...
    python docker/build.py --flavor cpu --tag mx-training-toolkit:cpu-test --local

The script builds the toolkit wheel (`pip wheel --no-deps .`), puts it in a temporary build context
with the Dockerfile, the flavor's requirements file and a wheelhouse (empty unless --wheelhouse or
--local), and runs `docker build` (BuildKit when the client has it).

--local is for machines where neither a registry nor the package index can be reached from builds
and containers (this project's CI machines): it makes a Debian base image with debootstrap and
`docker import`, and a wheelhouse with `pip download` on the host, both cached (the image by name,
the wheelhouse under ~/.cache/mx-training-toolkit), and then builds with no network at all.

Horovod. The CPU image installs the Horovod wheel (MXNet + Gloo, no MPI) that
scripts/install_horovod.sh builds on the host and caches in ~/.cache/mx-training-toolkit/horovod
($MX_TRAINING_CACHE/horovod): Horovod is published only as an sdist whose build needs MXNet, and
building it in the image (compilers, cmake, 5 minutes) for every CPU image would be wasteful. If
the wheel is missing, build.py runs that script with the repository's .venv Python (or, with
--no-build-horovod or without such a Python, fails saying how to run it). The wheel links libmxnet.so through a RUNPATH naming the host venv; the copy
put in the wheelhouse points it at $ORIGIN/../../mxnet instead (site-packages/mxnet in the image),
so the image never depends on a host path. It is a linux_x86_64 wheel built against the host's C
library: the base must be the host's Debian release or newer (bookworm here), and its Python the
venv's minor version.

The GPU image compiles Horovod with NCCL itself, in a CUDA devel builder stage: --builder-image, or
with --local the local CUDA builder image (ensure_cuda_builder_image: Debian bookworm with the
non-free CUDA 11.8 toolchain and g++-11, installed by apt in a chroot on the host, the packages
cached under ~/.cache/mx-training-toolkit/cuda-debs). The stage's result (the Horovod wheel, a
libcuda.so.1 stub for checks without a GPU, a report) is exported once and cached under
~/.cache/mx-training-toolkit/horovod-nccl (ensure_horovod_export); image builds take it from there.

GluonNLP. Its last release (0.10.0) is an sdist with a Cython extension: scripts/build_gluonnlp.sh
builds its wheel on the host once and caches it in ~/.cache/mx-training-toolkit/gluonnlp, and
build.py puts it into the wheelhouse like Horovod's (building it first when it is missing: about
half a minute).

The functions are also the tests' API: ensure_base_image(), ensure_wheelhouse(),
ensure_horovod_wheel(), relocate_horovod_wheel(), ensure_gluonnlp_wheel(), ensure_cuda_builder_image(),
ensure_horovod_export(), cuda_stub(), build().
"""

import argparse
import base64
import contextlib
import fcntl
import hashlib
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parent
REPO_ROOT = DOCKER_DIR.parent
CACHE_DIR = Path(os.environ.get("MXTT_CACHE_DIR", Path.home() / ".cache" / "mx-training-toolkit"))

# The local base: minimal Debian with what the images expect from the OS. libgomp1 and libquadmath0
# are needed by the MXNet wheel; procps and iproute2 are what the Dockerfiles' OS_PACKAGES ask for;
# libgl1 and libglib2.0-0 are what opencv-python's bundled Qt loads with cv2 (GluonCV needs that
# OpenCV, not the headless one).
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "procps", "iproute2", "libgomp1", "libquadmath0",
                 "libgl1", "libglib2.0-0")
BASE_REPOSITORY = "mx-training-toolkit-base"
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Target:
    """The interpreter and C library of a base image, which decide which wheels fit it."""

    python_version: str  # "3.11"
    glibc: str  # "2_36", as in manylinux_2_36

    def pip_download_args(self):
        abi = "cp" + self.python_version.replace(".", "")
        # pip does not widen --platform to older manylinux tags: list every one the C library meets.
        newest = int(self.glibc.split("_")[1])
        platforms = ["manylinux_2_%d_x86_64" % minor for minor in range(newest, 4, -1)]
        platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python_version,
                "--abi", abi, "--abi", "abi3", "--abi", "none"]
        for platform in platforms:
            args += ["--platform", platform]
        return args


BOOKWORM = Target("3.11", "2_36")  # Debian 12, python:3.11-slim-bookworm, the local base
FOCAL = Target("3.8", "2_31")  # Ubuntu 20.04, the default CUDA 11.8 base


@dataclass(frozen=True)
class Flavor:
    name: str
    dockerfile: Path
    requirements: Path
    default_target: Target  # the default BASE_IMAGE's
    # Where the image's Horovod wheel (pinned in the requirements file) comes from: "host" = the wheel
    # scripts/install_horovod.sh caches, put into the wheelhouse; "builder" = the Dockerfile's own
    # builder stage, which compiles the sdist (the wheelhouse then holds the sdist and build tools).
    horovod: str


FLAVORS = {
    "cpu": Flavor("cpu", DOCKER_DIR / "Dockerfile.cpu", DOCKER_DIR / "requirements-cpu.txt", BOOKWORM, "host"),
    "gpu": Flavor("gpu", DOCKER_DIR / "Dockerfile.gpu", DOCKER_DIR / "requirements-gpu.txt", FOCAL, "builder"),
}

# What the GPU image's builder stage installs besides MXNet to compile Horovod (no build isolation:
# the build must import the image's MXNet). Keep in step with HOROVOD_BUILD_REQUIREMENTS in
# Dockerfile.gpu; build.py passes this value. cmake 4 refuses the old cmake_minimum_required of
# Horovod's third-party code. Horovod's setup.py also lists its runtime dependencies as
# setup_requires for a build, and setuptools would fetch missing ones from the index, past pip's
# --find-links/--no-index: so they are installed first.
HOROVOD_BUILD_REQUIREMENTS = ("setuptools<70", "wheel", "cmake>=3.13,<4", "cloudpickle", "psutil", "pyyaml",
                              "packaging")
# The marker that tells the Dockerfiles the wheelhouse is complete: install with --no-index.
NO_INDEX_MARKER = ".no-index"


def log(message):
    print("[build.py] %s" % message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def stage(name, timings=None):
    """Log how long the block took; record it in `timings` (a dict) when given."""
    start = time.monotonic()
    log("%s ..." % name)
    try:
        yield
    finally:
        seconds = time.monotonic() - start
        if timings is not None:
            timings[name] = round(seconds, 1)
        log("%s: %.1f s" % (name, seconds))


def run(argv, **kwargs):
    """subprocess.run with check=True, logging the command line."""
    log("$ " + " ".join(str(a) for a in argv))
    return subprocess.run([str(a) for a in argv], check=True, **kwargs)


def as_root(argv):
    return list(argv) if os.geteuid() == 0 else ["sudo", "-n"] + list(argv)


# --- docker client ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DockerClient:
    """How to call docker: `argv` for every command, `build_argv` + `build_env` for builds."""

    argv: tuple
    build_argv: tuple
    build_env: dict
    buildkit: bool


def docker_client():
    """Prefer Debian's /usr/bin/docker with BuildKit built in; on these machines a newer client
    without buildx comes first on PATH, and DOCKER_BUILDKIT=1 fails with it."""
    if Path("/usr/bin/docker").exists():
        return DockerClient(("/usr/bin/docker",), ("/usr/bin/docker", "build", "--progress=plain"),
                            {"DOCKER_BUILDKIT": "1"}, True)
    docker = shutil.which("docker") or "docker"
    has_buildx = subprocess.run([docker, "buildx", "version"], capture_output=True).returncode == 0
    if has_buildx:
        return DockerClient((docker,), (docker, "buildx", "build", "--load", "--progress=plain"), {}, True)
    return DockerClient((docker,), (docker, "build"), {"DOCKER_BUILDKIT": "0"}, False)


def image_exists(name, client=None):
    client = client or docker_client()
    return subprocess.run([*client.argv, "image", "inspect", name], capture_output=True).returncode == 0


# --- toolkit wheel ------------------------------------------------------------------------------

def build_toolkit_wheel(dest):
    """Build the toolkit's wheel into `dest`; return its path."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # An isolated build would fetch setuptools from the index on every build; with setuptools and
    # wheel already here (the venv has them), the build needs no network once the wheelhouse exists.
    have_tools = all(importlib.util.find_spec(name) for name in ("setuptools", "wheel"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
         *(["--no-build-isolation"] if have_tools else []), "-w", dest, REPO_ROOT])
    wheels = sorted(dest.glob("mx_training_toolkit-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError("expected one toolkit wheel in %s, found %s" % (dest, wheels))
    return wheels[0]


# --- local base image ---------------------------------------------------------------------------

def debian_mirror(suite=BASE_SUITE, sources=Path("/etc/apt/sources.list.d/debian.sources")):
    """The host's Debian mirror for `suite` (never a hard-coded host name): $DEBIAN_MIRROR, else the
    first URIs of a deb822 stanza listing the suite, else a matching line of /etc/apt/sources.list."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    if sources.exists():
        for stanza in sources.read_text().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith((" ", "#")):
                    fields[key.strip()] = value.strip()
            if suite in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == suite:
                return parts[1]
    raise RuntimeError("no Debian mirror for %s in %s; set DEBIAN_MIRROR" % (suite, sources))


def base_image_name(suite=BASE_SUITE, packages=BASE_PACKAGES):
    """Name of the local base; the tag changes whenever the package list does."""
    digest = hashlib.sha256(" ".join([suite, *sorted(packages)]).encode()).hexdigest()[:10]
    return "%s:%s-%s" % (BASE_REPOSITORY, suite, digest)


@contextlib.contextmanager
def file_lock(name):
    """Serialise concurrent builders of the same cached thing (parallel test sessions)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / (name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_base_image(suite=BASE_SUITE, packages=BASE_PACKAGES, timings=None, client=None):
    """Return the name of a local Debian base image, making it (debootstrap + docker import) if it
    does not exist yet."""
    client = client or docker_client()
    name = base_image_name(suite, packages)
    with file_lock("base-image"):
        if image_exists(name, client):
            log("base image %s exists" % name)
            return name
        with debootstrapped("mxtt-rootfs-", suite, ["--include=" + ",".join(packages)], "debootstrap",
                            timings) as rootfs:
            # Package caches would only make the image bigger.
            run(as_root(["sh", "-c", 'rm -rf "$0"/var/cache/apt/archives/*.deb "$0"/var/lib/apt/lists/*', rootfs]))
            with stage("docker import", timings):
                _import_rootfs(rootfs, name, client)
    return name


@contextlib.contextmanager
def debootstrapped(prefix, suite, options, stage_name, timings=None):
    """The path of a minimal Debian `suite` (debootstrap --variant=minbase with `options`, from the
    host's mirror) in a new directory under /var/tmp whose name starts with `prefix`; the directory is
    removed (as root: its files are root's) when the block ends. `stage_name` names the debootstrap
    stage in the log and in `timings`."""
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is not installed (run .ci/docker-up.sh)")
    mirror = debian_mirror(suite)
    rootfs = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    try:
        with stage(stage_name, timings):
            run(as_root(["debootstrap", "--variant=minbase", *options, suite, rootfs, mirror]),
                stdout=subprocess.DEVNULL)
        yield rootfs
    finally:
        subprocess.run(as_root(["rm", "-rf", "--one-file-system", str(rootfs)]), check=False)


# --- local CUDA builder image (the GPU image's Horovod stage) -----------------------------------

# Debian bookworm's CUDA 11.8 toolchain: nvidia-cuda-toolkit (nvcc, cuobjdump) and nvidia-cuda-dev
# (headers, static runtime; it pulls in the driver's libcuda1, which lets the build import
# mxnet-cu112, and which never leaves this image), from non-free and contrib. nvcc 11.8 refuses
# GCC newer than 11: g++-11. About 1.6 GB of packages; cached in CUDA_DEBS_DIR.
CUDA_BUILDER_COMPONENTS = ("main", "contrib", "non-free")
CUDA_BUILDER_PACKAGES = ("nvidia-cuda-toolkit", "nvidia-cuda-dev", "g++-11", "python3-dev", "python3-venv", "make")
CUDA_BUILDER_REPOSITORY = "mx-training-toolkit-cuda-builder"
CUDA_DEBS_DIR = CACHE_DIR / "cuda-debs"


def cuda_builder_image_name(suite=BASE_SUITE, packages=CUDA_BUILDER_PACKAGES):
    digest = hashlib.sha256(" ".join([suite, *CUDA_BUILDER_COMPONENTS, *sorted(packages)]).encode()).hexdigest()[:10]
    return "%s:%s-%s" % (CUDA_BUILDER_REPOSITORY, suite, digest)


def ensure_cuda_builder_image(suite=BASE_SUITE, packages=CUDA_BUILDER_PACKAGES, timings=None, client=None,
                              debs_dir=None):
    """Return the name of the local CUDA builder image, making it if it does not exist yet: a
    debootstrap Debian with the non-free CUDA 11.8 toolchain installed by apt in a chroot on the host
    (the image build itself has no network), then `docker import`. The downloaded packages are
    kept in `debs_dir` (default CUDA_DEBS_DIR) and given to apt again next time, so a machine with
    that cache downloads only debootstrap's few MB."""
    client = client or docker_client()
    debs_dir = Path(debs_dir) if debs_dir else CUDA_DEBS_DIR
    name = cuda_builder_image_name(suite, packages)
    with file_lock("cuda-builder-image"):
        if image_exists(name, client):
            log("CUDA builder image %s exists" % name)
            return name
        with debootstrapped("mxtt-cuda-rootfs-", suite, ["--components=" + ",".join(CUDA_BUILDER_COMPONENTS)],
                            "debootstrap (CUDA builder)", timings) as rootfs:
            archives = rootfs / "var" / "cache" / "apt" / "archives"
            chroot = as_root(["chroot", rootfs])
            with stage("apt-get install %s (CUDA builder)" % " ".join(packages), timings):
                cached = sorted(debs_dir.glob("*.deb")) if debs_dir.is_dir() else []
                if cached:
                    log("%d packages from %s" % (len(cached), debs_dir))
                    run(as_root(["cp", *cached, archives]))
                run(as_root(["cp", "/etc/resolv.conf", rootfs / "etc" / "resolv.conf"]))
                # TMPDIR names a directory of the host (.ci/run sets one under /dev/shm), not of the chroot:
                # a package's maintainer script (ca-certificates') that makes a temporary file fails there.
                env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "TMPDIR": "/tmp"}
                run([*chroot, "apt-get", "update", "-qq"], env=env)
                run([*chroot, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages], env=env,
                    stdout=subprocess.DEVNULL)
                debs_dir.mkdir(parents=True, exist_ok=True)
                for deb in archives.glob("*.deb"):
                    if not (debs_dir / deb.name).exists():
                        shutil.copy2(deb, debs_dir / (deb.name + ".partial"))
                        os.replace(debs_dir / (deb.name + ".partial"), debs_dir / deb.name)
                run(as_root(["sh", "-c", 'rm -rf "$0"/var/cache/apt/archives/*.deb "$0"/var/lib/apt/lists/*; '
                                         ': > "$0"/etc/resolv.conf', rootfs]))
            with stage("docker import (CUDA builder)", timings):
                _import_rootfs(rootfs, name, client)
    return name


def _import_rootfs(rootfs, name, client):
    tar = subprocess.Popen(as_root(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."]), stdout=subprocess.PIPE)
    try:
        run([*client.argv, "import", "--change", "ENV PATH=" + IMAGE_PATH, "--change", 'CMD ["/bin/bash"]', "-", name],
            stdin=tar.stdout, stdout=subprocess.DEVNULL)
    finally:
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError("tar of %s failed" % rootfs)


# --- Horovod ------------------------------------------------------------------------------------

HOROVOD_SCRIPT = REPO_ROOT / "scripts" / "install_horovod.sh"
HOST_VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
_HOROVOD_PIN = re.compile(r"^\s*horovod\s*==\s*([0-9][^\s;#]*)", re.IGNORECASE | re.MULTILINE)


def horovod_pin(requirements):
    """The Horovod version a requirements text pins (a `horovod==X` line), or None."""
    match = _HOROVOD_PIN.search(requirements)
    return match.group(1) if match else None


def without_horovod(requirements):
    """The requirements text without its horovod line: what `pip download` can fetch (the index has
    no Horovod wheel), and what an image built --without-horovod installs."""
    return "".join(line for line in requirements.splitlines(keepends=True) if not _HOROVOD_PIN.match(line))


def horovod_cache_root():
    """Where scripts/install_horovod.sh caches: $MX_TRAINING_CACHE, else build.py's cache dir; the
    wheels are in its horovod/ subdirectory."""
    return Path(os.environ.get("MX_TRAINING_CACHE") or CACHE_DIR)


def horovod_wheel_name(version, target):
    abi = "cp" + target.python_version.replace(".", "")
    return "horovod-%s-%s-%s-linux_x86_64.whl" % (version, abi, abi)


def _python_version(python):
    proc = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_horovod_wheel(version, target, cache_root=None, python=None, build_missing=True, timings=None):
    """Return the Horovod wheel (MXNet + Gloo, no MPI) that scripts/install_horovod.sh caches for
    `target`'s Python. When it is missing, run the script with `python` (default: the repository's
    .venv, which must have `target`'s Python and mxnet) to build it (about 5 minutes on 2 cores),
    or, with build_missing=False or no such Python, fail saying how to make it."""
    cache_root = Path(cache_root) if cache_root else horovod_cache_root()
    wheel = cache_root / "horovod" / horovod_wheel_name(version, target)
    python = Path(python) if python else HOST_VENV_PYTHON
    how = ("build it with `MX_TRAINING_CACHE=%s bash scripts/install_horovod.sh PYTHON`, PYTHON being the "
           "python of a Python %s virtual environment with mxnet (`pip install -e '.[mxnet]'`), then run "
           "build.py again" % (cache_root, target.python_version))
    with file_lock("horovod"):
        if wheel.exists():
            log("Horovod wheel %s exists" % wheel)
            return wheel
        if not build_missing:
            raise RuntimeError("no Horovod wheel %s; %s" % (wheel, how))
        if not python.exists():
            raise RuntimeError("no Horovod wheel %s, and no %s to build it with; %s" % (wheel, python, how))
        found = _python_version(python)
        if found != target.python_version:
            raise RuntimeError("no Horovod wheel %s, and %s is Python %s, not %s; %s"
                               % (wheel, python, found, target.python_version, how))
        with stage("Horovod wheel (scripts/install_horovod.sh %s)" % python, timings):
            try:
                run(["bash", HOROVOD_SCRIPT, python],
                    env={**os.environ, "MX_TRAINING_CACHE": str(cache_root), "HOROVOD_VERSION": version})
            except subprocess.CalledProcessError as exc:
                raise RuntimeError("scripts/install_horovod.sh %s failed (exit status %d), so there is no %s; "
                                   "its output above says why" % (python, exc.returncode, wheel)) from None
        if not wheel.exists():
            raise RuntimeError("scripts/install_horovod.sh ran but left no %s; %s" % (wheel, how))
    return wheel


# ELF64 little-endian constants (the wheel is linux_x86_64).
_SHT_DYNAMIC, _SHT_DYNSYM, _SHT_VERDEF, _SHT_VERNEED = 6, 11, 0x6FFFFFFD, 0x6FFFFFFE
_DT_STRING_TAGS = (1, 14, 15, 29)  # DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH
_DT_RPATH_TAGS = (15, 29)


def set_runpath(data, runpath):
    """Return the ELF shared object `data` with its DT_RUNPATH/DT_RPATH string replaced by `runpath`,
    in place in .dynstr (padded with NULs); `data` unchanged if it has none. patchelf would do this,
    but is not on these machines; a rewrite in place is enough as long as the new string is not
    longer and no other name of the file shares the old string's bytes (the linker merges string
    tails), which is checked."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not an ELF64 little-endian file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    # Section header fields: name, type, flags, addr, offset, size, link, info, addralign, entsize.
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    dynamic = [s for s in sections if s[1] == _SHT_DYNAMIC]
    if not dynamic:
        return data
    dynstr = sections[dynamic[0][6]]
    strtab = dynstr[4]
    targets, names = [], []  # offsets in .dynstr: runpath strings; every other name
    for pos in range(dynamic[0][4], dynamic[0][4] + dynamic[0][5], 16):
        tag, value = struct.unpack_from("<qQ", data, pos)
        if tag == 0:
            break
        if tag in _DT_RPATH_TAGS:
            targets.append(value)
        elif tag in _DT_STRING_TAGS:
            names.append(value)
    for section in sections:
        if section[6] != dynamic[0][6]:
            continue
        if section[1] == _SHT_DYNSYM:
            names += [struct.unpack_from("<I", data, pos)[0]
                      for pos in range(section[4], section[4] + section[5], 24)]
        elif section[1] in (_SHT_VERNEED, _SHT_VERDEF):
            names += _version_names(data, section)
    out = bytearray(data)
    for offset in targets:
        start = strtab + offset
        old_length = data.index(b"\0", start) - start
        new = runpath.encode()
        if len(new) > old_length:
            raise RuntimeError("RUNPATH %r is shorter than %r: cannot rewrite it in place"
                               % (data[start:start + old_length].decode(), runpath))
        if any(offset < name <= offset + old_length for name in names):
            raise RuntimeError("another name shares the bytes of RUNPATH %r: cannot rewrite it in place"
                               % data[start:start + old_length].decode())
        out[start:start + old_length] = new + b"\0" * (old_length - len(new))
    return bytes(out)


def _version_names(data, section):
    """The .dynstr offsets a GNU version section (verneed or verdef) refers to."""
    names, pos = [], section[4]
    for _ in range(section[7]):  # sh_info: the number of entries
        if section[1] == _SHT_VERNEED:
            _version, count, file_name, aux, following = struct.unpack_from("<HHIII", data, pos)
            names.append(file_name)
            aux_pos = pos + aux
            for _ in range(count):
                _hash, _flags, _other, name, aux_next = struct.unpack_from("<IHHII", data, aux_pos)
                names.append(name)
                aux_pos += aux_next
        else:
            _version, _flags, _index, count, _hash, aux, following = struct.unpack_from("<HHHHIII", data, pos)
            aux_pos = pos + aux
            for _ in range(count):
                name, aux_next = struct.unpack_from("<II", data, aux_pos)
                names.append(name)
                aux_pos += aux_next
        if not following:
            break
        pos += following
    return names


def elf_runpath(data):
    """The DT_RUNPATH (or DT_RPATH) string of an ELF64 shared object, or None."""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    for section in sections:
        if section[1] != _SHT_DYNAMIC:
            continue
        strtab = sections[section[6]][4]
        for pos in range(section[4], section[4] + section[5], 16):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag in _DT_RPATH_TAGS:
                start = strtab + value
                return data[start:data.index(b"\0", start)].decode()
    return None


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def relocate_horovod_wheel(source, dest_dir):
    """Copy the Horovod wheel `source` into `dest_dir` (same file name) with every shared object's
    RUNPATH that names a host directory .../site-packages/mxnet replaced by the same directory
    relative to the object ($ORIGIN/../../mxnet for horovod/mxnet/mpi_lib*.so), and its RECORD
    updated. scripts/install_horovod.sh builds against the host venv's MXNet, so the wheel it caches
    finds libmxnet.so only at that host path; relocated, it finds the image's own MXNet, and `ldd`
    in the image resolves every library. Return the new wheel's path."""
    source, dest_dir = Path(source), Path(dest_dir)
    dest = dest_dir / source.name
    with zipfile.ZipFile(source) as wheel:
        infos = wheel.infolist()
        contents = {info.filename: wheel.read(info) for info in infos}
    changed = {}
    for name, data in contents.items():
        if not name.endswith(".so") or not data.startswith(b"\x7fELF"):
            continue
        runpath = elf_runpath(data)
        if runpath and any(part.rstrip("/").endswith("site-packages/mxnet") for part in runpath.split(":")):
            relative = os.path.relpath("mxnet", os.path.dirname(name) or ".")
            changed[name] = set_runpath(data, "$ORIGIN/" + relative)
            log("%s: RUNPATH %s -> $ORIGIN/%s" % (name, runpath, relative))
    record = next(name for name in contents if name.endswith(".dist-info/RECORD"))
    lines = []
    for line in contents[record].decode().splitlines():
        path = line.rsplit(",", 2)[0]
        if path in changed:
            line = "%s,%s,%d" % (path, _record_hash(changed[path]), len(changed[path]))
        lines.append(line)
    contents.update(changed)
    contents[record] = ("\n".join(lines) + "\n").encode()
    partial = dest_dir / (source.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as wheel:
        for info in infos:  # same order and file modes; RECORD stays last
            wheel.writestr(info, contents[info.filename], compress_type=zipfile.ZIP_DEFLATED)
    os.replace(partial, dest)
    return dest


def add_horovod_wheel(wheel, dest_dir):
    """Put the relocated copy of `wheel` into `dest_dir` unless the copy there already came from
    this very wheel (a marker keeps the source's hash); drop other Horovod wheels there."""
    dest_dir = Path(dest_dir)
    source_hash = hashlib.sha256(Path(wheel).read_bytes()).hexdigest()
    marker = dest_dir / ".horovod-source"
    dest = dest_dir / Path(wheel).name
    if dest.exists() and marker.exists() and marker.read_text() == source_hash:
        return dest
    for stale in dest_dir.glob("horovod-*.whl"):
        stale.unlink()
    dest = relocate_horovod_wheel(wheel, dest_dir)
    marker.write_text(source_hash)
    return dest


# --- GluonNLP ------------------------------------------------------------------------------------

GLUONNLP_SCRIPT = REPO_ROOT / "scripts" / "build_gluonnlp.sh"
_GLUONNLP_PIN = re.compile(r"^\s*gluonnlp\s*==\s*([0-9][^\s;#]*)", re.IGNORECASE | re.MULTILINE)


def gluonnlp_pin(requirements):
    """The GluonNLP version a requirements text pins (a `gluonnlp==X` line), or None."""
    match = _GLUONNLP_PIN.search(requirements)
    return match.group(1) if match else None


def without_host_built(requirements):
    """The requirements text without the lines of the packages built on the host (Horovod,
    GluonNLP): what `pip download --only-binary=:all:` can fetch."""
    kept = without_horovod(requirements)
    return "".join(line for line in kept.splitlines(keepends=True) if not _GLUONNLP_PIN.match(line))


def ensure_gluonnlp_wheel(version, target, cache_root=None, python=None, build_missing=True, timings=None):
    """Return the GluonNLP wheel scripts/build_gluonnlp.sh caches for `target`'s Python (the index
    has only its sdist, with a Cython extension; the image build has no compiler). When it is
    missing, run the script with `python` (default: this Python) if that is `target`'s version,
    else fail saying how to make it."""
    cache_root = Path(cache_root) if cache_root else horovod_cache_root()
    abi = "cp" + target.python_version.replace(".", "")
    wheel = cache_root / "gluonnlp" / ("gluonnlp-%s-%s-%s-linux_x86_64.whl" % (version, abi, abi))
    python = Path(python) if python else Path(sys.executable)
    how = ("build it with `MX_TRAINING_CACHE=%s bash scripts/build_gluonnlp.sh PYTHON`, PYTHON being a Python %s, "
           "then run build.py again" % (cache_root, target.python_version))
    with file_lock("gluonnlp"):
        if wheel.exists():
            log("GluonNLP wheel %s exists" % wheel)
            return wheel
        found = _python_version(python)
        if not build_missing or found != target.python_version:
            raise RuntimeError("no GluonNLP wheel %s (%s is Python %s); %s" % (wheel, python, found, how))
        with stage("GluonNLP wheel (scripts/build_gluonnlp.sh %s)" % python, timings):
            try:
                run(["bash", GLUONNLP_SCRIPT, python],
                    env={**os.environ, "MX_TRAINING_CACHE": str(cache_root), "GLUONNLP_VERSION": version})
            except subprocess.CalledProcessError as exc:
                raise RuntimeError("scripts/build_gluonnlp.sh failed (exit status %d), so there is no %s; its output "
                                   "above says why" % (exc.returncode, wheel)) from None
        if not wheel.exists():
            raise RuntimeError("scripts/build_gluonnlp.sh ran but left no %s; %s" % (wheel, how))
    return wheel


def add_host_wheel(wheel, dest_dir):
    """Put a copy of the host-built `wheel` into `dest_dir`, dropping other versions of it there."""
    dest_dir = Path(dest_dir)
    dest = dest_dir / Path(wheel).name
    project = Path(wheel).name.split("-")[0]
    for stale in dest_dir.glob(project + "-*.whl"):
        if stale != dest:
            stale.unlink()
    if not dest.exists() or dest.stat().st_size != Path(wheel).stat().st_size:
        shutil.copy2(wheel, dest)
    return dest


# --- wheelhouse ---------------------------------------------------------------------------------

def ensure_wheelhouse(flavor, target, cache_dir=CACHE_DIR, timings=None, horovod=True, build_horovod=True):
    """Return a directory of wheels for the flavor's requirements file, for `target`; downloaded
    once per distinct requirements file and target, then reused.

    With `horovod` (and a `horovod==X` pin in the requirements), the CPU flavor's wheelhouse also
    gets the relocated Horovod wheel of ensure_horovod_wheel() (refreshed whenever that wheel
    changes), and the GPU flavor's the Horovod sdist and HOROVOD_BUILD_REQUIREMENTS for its builder
    stage. Everything else comes from `pip download`, Horovod's own dependencies included."""
    spec = FLAVORS[flavor]
    requirements = spec.requirements.read_text()
    version = horovod_pin(requirements) if horovod else None
    download = without_host_built(requirements)
    build_tools = HOROVOD_BUILD_REQUIREMENTS if version and spec.horovod == "builder" else ()
    sdist = version if version and spec.horovod == "builder" else None
    # Ask for the host wheel first: it may take the script minutes to build it.
    host_wheel = None
    if version and spec.horovod == "host":
        host_wheel = ensure_horovod_wheel(version, target, build_missing=build_horovod, timings=timings)
    nlp_version = gluonnlp_pin(requirements)
    nlp_wheel = ensure_gluonnlp_wheel(nlp_version, target, timings=timings) if nlp_version else None
    key = hashlib.sha256(repr((download, target, build_tools, sdist)).encode()).hexdigest()[:12]
    wheelhouse = Path(cache_dir) / "wheelhouse" / ("%s-py%s-%s" % (flavor, target.python_version, key))
    with file_lock("wheelhouse"):
        if (wheelhouse / ".complete").exists():
            log("wheelhouse %s exists" % wheelhouse)
        else:
            with stage("wheelhouse", timings):
                partial = wheelhouse.with_name(wheelhouse.name + ".partial")
                shutil.rmtree(partial, ignore_errors=True)
                partial.mkdir(parents=True)
                pip_download = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
                                "--dest", partial]
                with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="requirements-") as listed:
                    listed.write(download)
                    listed.flush()
                    run([*pip_download, *target.pip_download_args(), "-r", listed.name])
                if build_tools:
                    run([*pip_download, *target.pip_download_args(), *build_tools])
                if sdist:
                    run([*pip_download, "--no-deps", "--no-binary", ":all:", "horovod==" + sdist])
                (partial / ".complete").write_text(requirements)
                shutil.rmtree(wheelhouse, ignore_errors=True)
                partial.rename(wheelhouse)
        if host_wheel:
            add_horovod_wheel(host_wheel, wheelhouse)
        if nlp_wheel:
            add_host_wheel(nlp_wheel, wheelhouse)
    return wheelhouse


# --- the GPU image's Horovod: compiled once in the builder stage, exported, cached ---------------

HOROVOD_EXPORT_DIR = CACHE_DIR / "horovod-nccl"
CONTEXT_DIR = CACHE_DIR / "context"
# The requirements lines the builder stage uses (the constraints of what it installs and compiles).
_BUILDER_PINS = re.compile(r"^\s*(mxnet|numpy|nvidia-|horovod)", re.IGNORECASE)


def horovod_export_dir(flavor, requirements, builder_image, cache_dir=None):
    """Where the builder stage's export for these inputs is cached: a directory named by a digest of
    the Dockerfile's builder stage, the builder image's name and the pins the builder uses (the
    rest, e.g. the base stage or libraries added later, leave it valid)."""
    dockerfile = FLAVORS[flavor].dockerfile.read_text()
    recipe = dockerfile[dockerfile.index("AS horovod-build\n"):dockerfile.index("FROM scratch AS horovod-export")]
    pins = [line.strip() for line in requirements.splitlines() if _BUILDER_PINS.match(line)]
    key = hashlib.sha256(repr((recipe, builder_image, pins)).encode()).hexdigest()[:12]
    return Path(cache_dir or HOROVOD_EXPORT_DIR) / key


def ensure_horovod_export(flavor, requirements, builder_image, context, build_argv, client, timings=None,
                          cache_dir=None):
    """Return the directory with what the builder stage exports: horovod/ (the stripped Horovod
    wheel with NCCL), cuda-stub/libcuda.so.1 (the driver stub for build checks and tests without a
    GPU; never put into the image) and report/build-report.txt (CUDA, NCCL, libmxnet.so's GPU code).
    Compiling takes many minutes on 2 cores, so it is done once (docker build --target
    horovod-export --output) and kept in HOROVOD_EXPORT_DIR; `build_argv` is the build's command
    line without its tag and context."""
    dest = horovod_export_dir(flavor, requirements, builder_image, cache_dir)
    with file_lock("horovod-export"):
        if (dest / ".complete").exists():
            log("Horovod (NCCL) build %s exists" % dest)
            return dest
        partial = dest.with_name(dest.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        argv = [arg for arg in build_argv if arg != "--load"]  # buildx: --output instead
        with stage("Horovod with NCCL (builder stage)", timings):
            run([*argv, "--target", "horovod-export", "--output", "type=local,dest=%s" % partial, context],
                env={**os.environ, **client.build_env})
        wheels = sorted(partial.glob("horovod/horovod-*.whl"))
        if len(wheels) != 1 or not (partial / "cuda-stub" / "libcuda.so.1").exists():
            raise RuntimeError("the builder stage exported %s, not one Horovod wheel and cuda-stub/libcuda.so.1"
                               % sorted(str(p.relative_to(partial)) for p in partial.rglob("*")))
        (partial / ".complete").write_text(builder_image + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)
    return dest


def cuda_stub(flavor="gpu", builder_image=None, cache_dir=None):
    """The libcuda.so.1 stub of the cached builder export for `flavor`'s requirements and
    `builder_image` (default: the local CUDA builder), or None when none is cached."""
    builder_image = builder_image or cuda_builder_image_name()
    export = horovod_export_dir(flavor, FLAVORS[flavor].requirements.read_text(), builder_image, cache_dir)
    stub = export / "cuda-stub" / "libcuda.so.1"
    return stub if (export / ".complete").exists() and stub.exists() else None


# --- the image ----------------------------------------------------------------------------------

def _link_or_copy(source, dest):
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


@contextlib.contextmanager
def build_context(flavor):
    """The build context directory of `flavor`'s builds, emptied first: always the same path
    (CONTEXT_DIR/<flavor>, one build of a flavor at a time). BuildKit keeps a copy of each context
    directory it is sent, keyed by the directory's path: with a new temporary directory every build
    it would keep another copy of the wheelhouse each time (2.2 GB for the GPU image) and read all
    of it again; with one path it reads only what changed."""
    context = CONTEXT_DIR / flavor
    with file_lock("context-" + flavor):
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        try:
            yield context
        finally:
            shutil.rmtree(context, ignore_errors=True)


def build(flavor, tag, base_image=None, wheelhouse=None, local=False, offline=None, os_packages=None,
          build_args=(), python_version=None, timings=None, builder_image=None, with_horovod=True,
          build_horovod=True):
    """Build the image `tag`; return `timings` (stage name -> seconds).

    local: make and use the debootstrap base image and a host-made wheelhouse (unless base_image or
    wheelhouse are given), and for the GPU flavor the local CUDA builder image (unless
    builder_image is given). offline (default: when local): build with no network at all.
    builder_image: the GPU flavor's BUILDER_IMAGE (a CUDA devel image), where Horovod is compiled;
    its export is cached (ensure_horovod_export), and the image build takes Horovod from there.
    with_horovod=False: an image without Horovod (its pin is left out of requirements.txt).
    build_horovod=False: fail, rather than run scripts/install_horovod.sh, when the CPU image's
    Horovod wheel is not cached.
    """
    timings = {} if timings is None else timings
    client = docker_client()
    spec = FLAVORS[flavor]
    requirements = spec.requirements.read_text()
    horovod_version = horovod_pin(requirements) if with_horovod else None
    if not with_horovod:
        requirements = without_horovod(requirements)
    compile_horovod = bool(horovod_version) and spec.horovod == "builder"
    local_builder = compile_horovod and local and builder_image is None
    if local and base_image is None:
        base_image = ensure_base_image(timings=timings, client=client)
    if local_builder:
        builder_image = cuda_builder_image_name()  # made below, only if Horovod must be compiled
    target = BOOKWORM if local else spec.default_target
    if python_version:
        target = Target(python_version, target.glibc)
    offline = local if offline is None else offline
    with build_context(flavor) as context:
        with stage("toolkit wheel", timings):
            build_toolkit_wheel(context / "dist")
        if local and wheelhouse is None:
            wheelhouse = ensure_wheelhouse(flavor, target, timings=timings, horovod=bool(horovod_version),
                                           build_horovod=build_horovod)
        shutil.copy2(spec.dockerfile, context / "Dockerfile")
        (context / "requirements.txt").write_text(requirements)
        (context / "wheelhouse").mkdir()
        if wheelhouse:
            # Wheels, and for a builder stage the Horovod sdist; never the cache's marker files.
            for package in Path(wheelhouse).iterdir():
                if package.name.endswith((".whl", ".tar.gz")):
                    _link_or_copy(package, context / "wheelhouse" / package.name)
            # A given wheelhouse has everything: pip must not look at the index.
            (context / "wheelhouse" / NO_INDEX_MARKER).write_text("")
        if horovod_version and spec.horovod == "host" and not any(
                (context / "wheelhouse").glob("horovod-%s-*.whl" % horovod_version)):
            # The index has no Horovod wheel: ours goes along even when the rest comes from the index.
            add_horovod_wheel(ensure_horovod_wheel(horovod_version, target, build_missing=build_horovod,
                                                   timings=timings), context / "wheelhouse")
        nlp_version = gluonnlp_pin(requirements)
        if nlp_version and not any((context / "wheelhouse").glob("gluonnlp-%s-*.whl" % nlp_version)):
            # Likewise GluonNLP: the index has only its sdist.
            add_host_wheel(ensure_gluonnlp_wheel(nlp_version, target, timings=timings), context / "wheelhouse")
        argv = [*client.build_argv, "-f", context / "Dockerfile"]
        if base_image:
            argv += ["--build-arg", "BASE_IMAGE=" + base_image]
        if os_packages is not None:
            argv += ["--build-arg", "OS_PACKAGES=" + os_packages]
        if spec.horovod == "builder":
            argv += ["--build-arg", "HOROVOD_BUILD_REQUIREMENTS=" + " ".join(HOROVOD_BUILD_REQUIREMENTS)]
            if builder_image:
                argv += ["--build-arg", "BUILDER_IMAGE=" + builder_image]
            if local_builder:  # it has every package the stage needs, and no apt source it could reach
                argv += ["--build-arg", "BUILDER_OS_PACKAGES="]
        for arg in build_args:
            argv += ["--build-arg", arg]
        if offline:
            argv += ["--network", "none"]
        if compile_horovod:
            builder_key = builder_image or "default"
            if local_builder and not (horovod_export_dir(flavor, requirements, builder_key) / ".complete").exists():
                ensure_cuda_builder_image(timings=timings, client=client)
            export = ensure_horovod_export(flavor, requirements, builder_key, context, argv, client, timings=timings)
            shutil.copytree(export, context / "horovod", ignore=shutil.ignore_patterns(".complete"))
            argv += ["--build-arg", "HOROVOD_STAGE=horovod-context"]
        elif spec.horovod == "builder":
            argv += ["--build-arg", "HOROVOD_STAGE=horovod-none"]
        with stage("docker build %s" % tag, timings):
            run([*argv, "-t", tag, context], env={**os.environ, **client.build_env})
    # The image this tag named before is now untagged: drop such leftovers of our own builds.
    subprocess.run([*client.argv, "image", "prune", "-f", "--filter", "label=mx-training-toolkit.flavor"],
                   capture_output=True)
    size = subprocess.run([*client.argv, "image", "inspect", "-f", "{{.Size}}", tag],
                          capture_output=True, text=True).stdout.strip()
    if size.isdigit():
        log("built %s (%.0f MB)" % (tag, int(size) / 1e6))
    return timings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="cpu")
    parser.add_argument("--tag", help="image name (default mx-training-toolkit:FLAVOR)")
    parser.add_argument("--base-image", help="BASE_IMAGE build argument (default: the Dockerfile's)")
    parser.add_argument("--wheelhouse", type=Path, help="install Python packages only from these wheels")
    parser.add_argument("--local", action="store_true",
                        help="make and use a local debootstrap base image and wheelhouse; build offline")
    parser.add_argument("--offline", action=argparse.BooleanOptionalAction, default=None,
                        help="build with --network none (default: with --local)")
    parser.add_argument("--os-packages", help='OS_PACKAGES build argument ("" = never run apt)')
    parser.add_argument("--python-version", help="wheelhouse target Python (default: the base's)")
    parser.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--builder-image",
                        help="GPU: BUILDER_IMAGE, the CUDA devel image Horovod is compiled in (default with --local: "
                             "the local CUDA builder image)")
    parser.add_argument("--without-horovod", action="store_true", help="leave Horovod out of the image")
    parser.add_argument("--no-build-horovod", action="store_true",
                        help="fail when the Horovod wheel is not cached instead of running scripts/install_horovod.sh")
    parser.add_argument("--base-only", action="store_true", help="only make the local base image")
    args = parser.parse_args(argv)

    timings = {}
    try:
        if args.base_only:
            print(ensure_base_image(timings=timings))
            return 0
        build(args.flavor, args.tag or "mx-training-toolkit:" + args.flavor, base_image=args.base_image,
              wheelhouse=args.wheelhouse, local=args.local, offline=args.offline,
              os_packages=args.os_packages, build_args=args.build_arg,
              python_version=args.python_version, timings=timings, builder_image=args.builder_image,
              with_horovod=not args.without_horovod, build_horovod=not args.no_build_horovod)
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        log("FAILED: %s" % exc)
        return 1
    finally:
        if timings:
            log("timings: " + ", ".join("%s %.1f s" % item for item in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
