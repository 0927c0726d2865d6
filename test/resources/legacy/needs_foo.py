"""train() requires a parameter the container does not offer."""


def train(hyperparameters, foo, num_gpus=0):
    pass
