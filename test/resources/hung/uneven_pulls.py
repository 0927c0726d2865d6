"""apache/mxnet #7888: a dist_sync job whose workers push and pull different numbers of times.

The worker of rank 0 takes one more step than the other; its last push waits for a push that never
comes, so the pull after it never completes, and the script blocks where it reads the result. The
other worker finishes and waits in ps-lite's exit barrier for rank 0. Silent from then on: the job
hangs until something ends it."""
import mxnet as mx

kv = mx.kv.create("dist_sync")
shape = (2, 3)
kv.init("w", mx.nd.zeros(shape))
out = mx.nd.zeros(shape)
steps = 2 if kv.rank == 0 else 1
for step in range(steps):
    print("uneven_pulls: rank {} step {} of {}".format(kv.rank, step + 1, steps), flush=True)
    kv.push("w", mx.nd.ones(shape))
    kv.pull("w", out=out)
    out.wait_to_read()  # BLOCKS HERE (rank 0, step 2)
print("uneven_pulls: rank {} done".format(kv.rank), flush=True)
