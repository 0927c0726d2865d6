"""The contract's names, each spelled once: the hyperparameters the launcher reads (docs/contract.md
section 2), the environment variables it reads (sections 3 and 7) and those it passes to its own
children, and the name of the download's staging directories. Constants only: importing this
module costs nothing, so child-side modules and ``mx-train`` use it too."""

# ---- hyperparameters.json: the launcher's own fields ------------------------------------------

PROGRAM_HP = "sagemaker_program"  # the entry point, relative to code/
SUBMIT_DIR_HP = "sagemaker_submit_directory"  # where the code comes from
LOG_LEVEL_HP = "sagemaker_container_log_level"
JOB_NAME_HP = "sagemaker_job_name"
REGION_HP = "sagemaker_region"
CLOUDWATCH_HP = "sagemaker_enable_cloudwatch_metrics"
LEGACY_MODE_HP = "sagemaker_mxnet_legacy_mode"
PS_ENABLED_HP = "sagemaker_parameter_server_enabled"
PS_PORT_HP = "_ps_port"
PS_VERBOSE_HP = "_ps_verbose"
DISTRIBUTION_GROUPS_HP = "sagemaker_distribution_instance_groups"
# What the SDK writes for distribution={'mpi': {'enabled': True, 'processes_per_host': N,
# 'custom_mpi_options': '...'}}: Horovod, run here without mpirun (see plan.py).
MPI_ENABLED_HP = "sagemaker_mpi_enabled"
MPI_PROCESSES_HP = "sagemaker_mpi_num_of_processes_per_host"
MPI_OPTIONS_HP = "sagemaker_mpi_custom_mpi_options"
MPI_TOTAL_HP = "sagemaker_mpi_num_processes"  # the reference toolkit's own spelling of the total, if given
# Framework switches that, in the reference, make the current instance group a distribution group
# when sagemaker_distribution_instance_groups is not given (only the parameter server runs here).
DISTRIBUTION_SWITCHES = (MPI_ENABLED_HP, PS_ENABLED_HP, "sagemaker_distributed_dataparallel_enabled",
                         "sagemaker_pytorch_ddp_enabled", "sagemaker_pytorch_xla_multi_worker_enabled",
                         "sagemaker_multi_worker_mirrored_strategy_enabled", "sagemaker_torch_distributed_enabled")

# ---- environment variables the launcher reads -------------------------------------------------

BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
PROGRAM_ENV = "SAGEMAKER_PROGRAM"  # when the hyperparameters give no entry point
SUBMIT_DIR_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
LEGACY_MODE_ENV = "SAGEMAKER_MXNET_LEGACY_MODE"
# The platform's name for the job, set in every container of it (the reference's job_name).
TRAINING_JOB_NAME_ENV = "TRAINING_JOB_NAME"
# Where boto3 would find the region; the reference's SAGEMAKER_REGION falls back to it.
AWS_REGION_ENV = "AWS_DEFAULT_REGION"
# The launcher's own settings (section 7, ``settings``).
STOP_GRACE_ENV = "MX_TRAINING_STOP_GRACE_SECONDS"
FAILURE_GRACE_ENV = "MX_TRAINING_FAILURE_GRACE_SECONDS"
HOST_WAIT_ENV = "MX_TRAINING_HOST_WAIT_SECONDS"
LINGER_ENV = "MX_TRAINING_PS_LINGER_SECONDS"
HOST_ADDRESSES_ENV = "MX_TRAINING_HOST_ADDRESSES"  # JSON {"algo-1": "127.0.0.2", ...}, for local runs
CHANNEL_SECRET_ENV = "MX_TRAINING_CHANNEL_SECRET"  # the key of the launchers' channel (``messages.job_secret``)
S3_TIMEOUT_ENV = "MX_TRAINING_S3_TIMEOUT_SECONDS"
STALL_TIMEOUT_ENV = "MX_TRAINING_STALL_TIMEOUT_SECONDS"  # the stall watchdog (``watchdog``); unset: off
# S3 endpoints for s3:// code, strongest first (see settings.s3_endpoint).
S3_ENDPOINT_ENV = "S3_ENDPOINT_URL"
AWS_S3_ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3"  # what the SageMaker Python SDK's local mode sets
AWS_ENDPOINT_ENV = "AWS_ENDPOINT_URL"
AWS_IGNORE_ENDPOINTS_ENV = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"

# ---- between the launcher and its own children ------------------------------------------------

# The script's variables of each user hyperparameter and each channel (the rest of SM_* is
# ``environment``'s): two names that differ only in case would become one variable.
HP_ENV_PREFIX = "SM_HP_"
CHANNEL_ENV_PREFIX = "SM_CHANNEL_"

# For Horovod's rendezvous server (``rendezvous``): "algo-1:2,algo-2:2", the address to bind, the port.
HOROVOD_HOSTS_ENV = "MX_TRAINING_HOROVOD_HOSTS"
HOROVOD_BIND_ENV = "MX_TRAINING_HOROVOD_BIND"
HOROVOD_PORT_ENV = "MX_TRAINING_HOROVOD_PORT"

# Where a Python process the launcher starts writes its stacks when it receives SIGQUIT (``stacks``).
STACKS_FILE_ENV = "MX_TRAINING_STACKS_FILE"
# The file a silent script touches to say it is alive (``training_utils.heartbeat``; only while the
# stall watchdog is on). Its children inherit the variable and may touch the file too.
HEARTBEAT_FILE_ENV = "MX_TRAINING_HEARTBEAT_FILE"

# ---- files --------------------------------------------------------------------------------------

# Everything a code download writes is under one directory with this prefix beside code/.
DOWNLOAD_STAGING_PREFIX = ".code-download-"
