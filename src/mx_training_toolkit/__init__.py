"""mx-training-toolkit: the inside of an MXNet training container.

Importing this package has no side effects and does not import mxnet, numpy or boto3.
"""

__version__ = "0.1.0"
