"""Child-side: Horovod's Gloo rendezvous server for one job, on the first host.

This is the key-value server ``horovodrun --gloo`` runs; every rank finds the others through it.
The launcher starts it before any rank (a rank that finds no server aborts after three tries) and
stops it once every worker of the job is done; it never exits by itself.

    MX_TRAINING_HOROVOD_HOSTS=algo-1:2,algo-2:2 MX_TRAINING_HOROVOD_BIND=10.0.0.1 \\
    MX_TRAINING_HOROVOD_PORT=8000 python -m mx_training_toolkit.rendezvous
"""

import os
import sys

from .names import HOROVOD_BIND_ENV, HOROVOD_HOSTS_ENV, HOROVOD_PORT_ENV


def serve(hosts_spec, bind, port):
    """Serve the rendezvous for ``hosts_spec`` ("host:slots,...") on ``bind``:``port`` until killed."""
    from horovod.runner.common.util.hosts import get_host_assignments, parse_hosts
    from horovod.runner.http.http_server import RendezvousHandler, RendezvousHTTPServer

    hosts = parse_hosts(hosts_spec)
    size = sum(h.slots for h in hosts)
    server = RendezvousHTTPServer((bind, port), RendezvousHandler, False)
    # Registers the scope sizes: the whole job, each host (local_<name>), each local rank (cross_<n>).
    server.init(get_host_assignments(hosts, size))
    print("rendezvous: serving {} ranks ({}) on {}:{}".format(size, hosts_spec, bind, port), flush=True)
    server.serve_forever()


def main():
    try:
        hosts_spec = os.environ[HOROVOD_HOSTS_ENV]
        bind = os.environ[HOROVOD_BIND_ENV]
        port = int(os.environ[HOROVOD_PORT_ENV])
    except (KeyError, ValueError) as e:
        print("rendezvous: started without its settings ({}); the launcher starts it".format(e), file=sys.stderr)
        sys.exit(2)
    import importlib.util

    if importlib.util.find_spec("horovod") is None:  # a clear message instead of a traceback
        print("rendezvous: Horovod is not installed in this environment (scripts/install_horovod.sh installs "
              "it); sagemaker_mpi_enabled needs it", file=sys.stderr)
        sys.exit(3)
    serve(hosts_spec, bind, port)


if __name__ == "__main__":
    main()
