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

The functions are also the tests' API: ensure_base_image(), ensure_wheelhouse(), build().
"""

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parent
REPO_ROOT = DOCKER_DIR.parent
CACHE_DIR = Path(os.environ.get("MXTT_CACHE_DIR", Path.home() / ".cache" / "mx-training-toolkit"))

# The local base: minimal Debian with what the images expect from the OS. libgomp1 and libquadmath0
# are needed by the MXNet wheel; procps and iproute2 are what the Dockerfiles' OS_PACKAGES ask for.
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "procps", "iproute2", "libgomp1", "libquadmath0")
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
FOCAL = Target("3.8", "2_31")  # Ubuntu 20.04, the default CUDA 11.2 base


@dataclass(frozen=True)
class Flavor:
    name: str
    dockerfile: Path
    requirements: Path
    default_target: Target  # the default BASE_IMAGE's


FLAVORS = {
    "cpu": Flavor("cpu", DOCKER_DIR / "Dockerfile.cpu", DOCKER_DIR / "requirements-cpu.txt", BOOKWORM),
    "gpu": Flavor("gpu", DOCKER_DIR / "Dockerfile.gpu", DOCKER_DIR / "requirements-gpu.txt", FOCAL),
}


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
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
         "-w", dest, REPO_ROOT])
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
        if not shutil.which("debootstrap"):
            raise RuntimeError("debootstrap is not installed (run .ci/docker-up.sh)")
        mirror = debian_mirror(suite)
        rootfs = Path(tempfile.mkdtemp(prefix="mxtt-rootfs-", dir="/var/tmp"))
        try:
            with stage("debootstrap", timings):
                run(as_root(["debootstrap", "--variant=minbase", "--include=" + ",".join(packages),
                             suite, rootfs, mirror]), stdout=subprocess.DEVNULL)
                # Package caches would only make the image bigger.
                run(as_root(["sh", "-c", 'rm -rf "$0"/var/cache/apt/archives/*.deb "$0"/var/lib/apt/lists/*',
                             rootfs]))
            with stage("docker import", timings):
                tar = subprocess.Popen(as_root(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."]),
                                       stdout=subprocess.PIPE)
                try:
                    run([*client.argv, "import", "--change", "ENV PATH=" + IMAGE_PATH,
                         "--change", 'CMD ["/bin/bash"]', "-", name], stdin=tar.stdout,
                        stdout=subprocess.DEVNULL)
                finally:
                    tar.stdout.close()
                    if tar.wait() != 0:
                        raise RuntimeError("tar of %s failed" % rootfs)
        finally:
            subprocess.run(as_root(["rm", "-rf", "--one-file-system", str(rootfs)]), check=False)
    return name


# --- wheelhouse ---------------------------------------------------------------------------------

def ensure_wheelhouse(flavor, target, cache_dir=CACHE_DIR, timings=None):
    """Return a directory of wheels for the flavor's requirements file, for `target`; downloaded
    once per distinct requirements file and target, then reused."""
    requirements = FLAVORS[flavor].requirements.read_text()
    key = hashlib.sha256(repr((requirements, target)).encode()).hexdigest()[:12]
    wheelhouse = Path(cache_dir) / "wheelhouse" / ("%s-py%s-%s" % (flavor, target.python_version, key))
    with file_lock("wheelhouse"):
        if (wheelhouse / ".complete").exists():
            log("wheelhouse %s exists" % wheelhouse)
            return wheelhouse
        with stage("wheelhouse", timings):
            partial = wheelhouse.with_name(wheelhouse.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
                 "--dest", partial, *target.pip_download_args(),
                 "-r", FLAVORS[flavor].requirements])
            (partial / ".complete").write_text(requirements)
            shutil.rmtree(wheelhouse, ignore_errors=True)
            partial.rename(wheelhouse)
    return wheelhouse


# --- the image ----------------------------------------------------------------------------------

def _link_or_copy(source, dest):
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def build(flavor, tag, base_image=None, wheelhouse=None, local=False, offline=None, os_packages=None,
          build_args=(), python_version=None, timings=None):
    """Build the image `tag`; return `timings` (stage name -> seconds).

    local: make and use the debootstrap base image and a host-made wheelhouse (unless base_image or
    wheelhouse are given). offline (default: when local): build with no network at all.
    """
    timings = {} if timings is None else timings
    client = docker_client()
    spec = FLAVORS[flavor]
    if local and base_image is None:
        base_image = ensure_base_image(timings=timings, client=client)
    target = BOOKWORM if local else spec.default_target
    if python_version:
        target = Target(python_version, target.glibc)
    offline = local if offline is None else offline
    with tempfile.TemporaryDirectory(prefix="mxtt-context-") as context:
        context = Path(context)
        with stage("toolkit wheel", timings):
            build_toolkit_wheel(context / "dist")
        if local and wheelhouse is None:
            wheelhouse = ensure_wheelhouse(flavor, target, timings=timings)
        shutil.copy2(spec.dockerfile, context / "Dockerfile")
        shutil.copy2(spec.requirements, context / "requirements.txt")
        (context / "wheelhouse").mkdir()
        if wheelhouse:
            for wheel in Path(wheelhouse).glob("*.whl"):
                _link_or_copy(wheel, context / "wheelhouse" / wheel.name)
        argv = [*client.build_argv, "-t", tag, "-f", context / "Dockerfile"]
        if base_image:
            argv += ["--build-arg", "BASE_IMAGE=" + base_image]
        if os_packages is not None:
            argv += ["--build-arg", "OS_PACKAGES=" + os_packages]
        for arg in build_args:
            argv += ["--build-arg", arg]
        if offline:
            argv += ["--network", "none"]
        with stage("docker build %s" % tag, timings):
            run([*argv, context], env={**os.environ, **client.build_env})
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
              python_version=args.python_version, timings=timings)
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        log("FAILED: %s" % exc)
        return 1
    finally:
        if timings:
            log("timings: " + ", ".join("%s %.1f s" % item for item in timings.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
