"""Run one training job through the real SageMaker Python SDK's local mode, offline.

    SDK_PYTHON sdk_driver.py SPEC.json RESULT.json

Runs in the SDK's own virtual environment (``sagemaker<3``; .ci/run makes ``.sdk-venv``), never in
the project's: it imports nothing from this repository. test_sdk_local_mode.py starts it as a
subprocess with the environment offline local mode needs (a region, fake credentials, no AWS
configuration files) and reads RESULT.json: ``{"ok": bool, "model_data": str or null,
"error_type": str or null, "error": str or null}``. The SDK's own output (and the containers',
which docker-compose streams) goes to stdout.

SPEC.json keys: ``image``, ``entry_point``, ``source_dir`` (a directory), ``instance_count``,
``hyperparameters``, ``distribution`` (or null), ``environment``, ``channels`` (name -> file:// URL),
``output_path`` (file:// URL), ``container_root`` (where the SDK puts each host's /opt/ml), and
``s3_endpoint_url`` plus ``code_location``: with both, the SDK tars ``source_dir`` and uploads it
there (the way users run it against S3) and the containers get the endpoint as
``AWS_ENDPOINT_URL_S3``; without them the directory is bind-mounted (``local_code``).
"""

import json
import sys
import traceback

ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"  # a full ARN: no IAM lookup


def session(spec):
    import boto3
    from sagemaker.local import LocalSession

    # A config given here means no lookup of the SDK's config files (and no S3 for them). The boto3
    # session is needed with s3_endpoint_url: without one, LocalSession (2.257) fails with
    # "'NoneType' object has no attribute 'resource'".
    sess = LocalSession(boto_session=boto3.Session(), s3_endpoint_url=spec.get("s3_endpoint_url"), sagemaker_config={
        "SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}})
    sess.config = {"local": {"local_code": not spec.get("code_location"),
                             "container_root": spec["container_root"]}}
    return sess


def run(spec):
    from sagemaker.mxnet import MXNet

    estimator = MXNet(
        entry_point=spec["entry_point"],
        source_dir=spec["source_dir"],
        role=ROLE,
        image_uri=spec["image"],
        instance_count=spec["instance_count"],
        instance_type="local",
        hyperparameters=spec.get("hyperparameters") or {},
        distribution=spec.get("distribution"),
        environment=spec.get("environment") or {},
        output_path=spec["output_path"],
        code_location=spec.get("code_location"),
        sagemaker_session=session(spec),
    )
    estimator.fit(spec.get("channels") or None, wait=True, logs=True)
    return estimator.model_data


def main():
    spec_file, result_file = sys.argv[1:3]
    with open(spec_file) as f:
        spec = json.load(f)
    result = {"ok": False, "model_data": None, "error_type": None, "error": None}
    try:
        result["model_data"] = run(spec)
        result["ok"] = True
    except Exception as e:  # the test asserts on what the SDK raised
        traceback.print_exc()
        result["error_type"], result["error"] = type(e).__name__, str(e)
    with open(result_file, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
