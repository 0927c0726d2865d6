"""Returns an object the default serializer cannot write, and has no save()."""


def train(**kwargs):
    return {"weights": [1, 2, 3]}
