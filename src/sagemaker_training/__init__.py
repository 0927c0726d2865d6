"""``sagemaker_training`` for user scripts: ``from sagemaker_training import environment;
environment.Environment()`` gives what the reference toolkit's does (hosts, instance groups,
channels, hyperparameters, directories, GPU and CPU counts), computed by this toolkit's own code,
so that it always agrees with the job's SM_* variables. Nothing else of the reference package is
here: ``train`` stays this toolkit's launcher."""
