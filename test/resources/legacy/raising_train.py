"""train() raises."""


def _check(rate):
    if rate > 1:
        raise ValueError("bad learning rate %s" % rate)


def train(hyperparameters):
    _check(hyperparameters["learning_rate"])
