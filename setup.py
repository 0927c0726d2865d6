from setuptools import find_packages, setup

setup(
    name="mx-training-toolkit",
    version="0.1.0",
    description="The inside of an MXNet training container: runs SageMaker-style training jobs.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    package_dir={"": "src"},
    packages=find_packages("src"),
    python_requires=">=3.8",
    install_requires=["psutil"],
    extras_require={
        "mxnet": ["mxnet==1.9.1", "numpy<1.24"],
        "s3": ["boto3"],
        # wheel: the tests build a setup.py without isolation, with this environment's setuptools, as a job with
        # code/wheelhouse/ does (setuptools before 70.1 builds wheels only with it).
        "test": ["pytest", "moto[server]", "boto3", "pyflakes", "wheel"],
    },
    entry_points={
        "console_scripts": [
            "train=mx_training_toolkit.command:train",
            "mx-train=mx_training_toolkit.local:main",
        ]
    },
)
