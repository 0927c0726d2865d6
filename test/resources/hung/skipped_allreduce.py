"""A Horovod job whose last rank skips an allreduce: it goes on to the next one, which the other
ranks never reach, and every rank waits for the others. Horovod's own stall check prints a warning
(after HOROVOD_STALL_CHECK_TIME_SECONDS) and nothing else."""
import horovod.mxnet as hvd
import mxnet as mx

hvd.init()
rank, size = hvd.rank(), hvd.size()
print("skipped_allreduce: rank {} of {} started".format(rank, size), flush=True)
if rank != size - 1:
    hvd.allreduce(mx.nd.ones((3,)), name="gradients").wait_to_read()  # BLOCKS HERE (the other ranks)
hvd.allreduce(mx.nd.ones((3,)), name="metrics").wait_to_read()  # BLOCKS HERE (the last rank)
print("skipped_allreduce: rank {} done".format(rank), flush=True)
