"""The channel's pure parts: bounded message framing, defensive decoding, the job's proof."""

import json

import pytest

from mx_training_toolkit.messages import (MAX_MESSAGE, BadMessage, LineReader, job_identity, job_secret, proof,
                                          reported_result)


def feed_in_pieces(data, cut):
    reader = LineReader()
    return reader.feed(data[:cut]) + reader.feed(data[cut:])


def test_messages_split_at_every_offset_come_out_whole():
    data = b'{"t":"ping"}\n{"t":"worker-done","host":"algo-2"}\n'
    for cut in range(len(data) + 1):
        assert feed_in_pieces(data, cut) == [{"t": "ping"}, {"t": "worker-done", "host": "algo-2"}]


@pytest.mark.parametrize("data,why", [
    (b"[1]\n", "a message that is not a JSON object with a type"),
    (b'{"t": 3}\n', "a message that is not a JSON object with a type"),
    (b"\xff\xfe\n", "a message that is not JSON"),
    (b"[" * 100000 + b"\n", "a message longer than 65536 bytes"),
    (b"[" * 60000 + b"\n", "a message that is not JSON"),  # too deep for the parser: refused, not a crash
])
def test_bad_messages(data, why):
    with pytest.raises(BadMessage) as e:
        LineReader().feed(data)
    assert str(e.value) == why


def test_a_line_without_end_is_cut_off_at_the_limit_whatever_the_chunks():
    reader = LineReader()
    with pytest.raises(BadMessage):
        for _ in range(MAX_MESSAGE // 1000 + 2):
            reader.feed(b"x" * 1000)


@pytest.mark.parametrize("message,expected", [
    ({"t": "failed", "status": "x", "host": ["a"], "tail": "no", "role": 5, "signal": "9"},
     ("launcher", "?", 1, (), "failed", 0, "", None, False, False)),
    ({"t": "failed", "status": 256, "host": "algo-2", "role": "worker", "tail": [1, "x"], "note": "n"},
     ("worker", "algo-2", 1, ("1", "x"), "n", 0, "", None, False, False)),
    ({"t": "failed", "status": 137, "host": "algo-2", "role": "server", "signal": 9, "reason": "r"},
     ("server", "algo-2", 137, (), "failed", 9, "r", None, False, False)),
    ({"t": "failed", "status": True, "rank": "1"}, ("launcher", "?", 1, (), "failed", 0, "", None, False, False)),
    ({"t": "failed", "status": 1, "host": "algo-2", "role": "worker", "rank": 3},
     ("worker", "algo-2", 1, (), "failed", 0, "", 3, False, False)),
    ({"t": "failed", "status": 1, "host": "algo-2", "role": "worker", "rank": 3, "consequence": True},
     ("worker", "algo-2", 1, (), "failed", 0, "", 3, True, False)),
    ({"t": "failed", "status": 1, "consequence": "yes"}, ("launcher", "?", 1, (), "failed", 0, "", None, False, False)),
])
def test_a_reported_failure_is_decoded_defensively(message, expected):
    assert tuple(reported_result(message, "failed")) == expected


def test_a_failure_is_masked_before_its_tail_is_windowed_and_sent(tmp_path):
    """S2: the other hosts get the last 20 lines; a multi-line secret that the window starts
    inside, the note and the reason are masked on the way out."""
    from mx_training_toolkit import masking
    from mx_training_toolkit.messages import failure_message
    from mx_training_toolkit.outcome import JobResult

    key = "-----BEGIN PRIVATE KEY-----\n" + "\n".join("line{:02d}".format(i) * 8 for i in range(30)) + \
        "\n-----END PRIVATE KEY-----"
    tail = tuple(key.split("\n")[10:]) + ("after",) * 5  # this host's own window starts inside the key
    masking.use(masking.Masker({"private_key": key}))
    try:
        message = failure_message(JobResult("worker", "algo-2", 1, tail, "note " + key, 0, "ValueError: " + key,
                                            recorded=True))
    finally:
        masking.use(None)
    assert len(message["tail"]) == 20 and message["tail"][-5:] == ["after"] * 5
    assert not any("line" in line for line in message["tail"]), message["tail"]
    assert message["reason"] == "ValueError: ********" and message["note"] == "note ********"
    assert message["recorded"] is True and reported_result(message, "failed").recorded


def test_the_proof_binds_the_nonce_the_host_and_the_job():
    secret = job_secret({"epochs": 3, "sagemaker_job_name": "j"})
    identity = job_identity("j", ["algo-1", "algo-2"], 8000)
    given = proof(secret, "n1", "algo-2", identity)
    assert given == proof(secret, "n1", "algo-2", identity)
    assert given != proof(secret, "n2", "algo-2", identity)
    assert given != proof(secret, "n1", "algo-3", identity)
    assert given != proof(secret, "n1", "algo-2", job_identity("j", ["algo-1", "algo-2"], 8001))
    assert given != proof(job_secret({"epochs": 4, "sagemaker_job_name": "j"}), "n1", "algo-2", identity)


def test_the_secret_comes_from_the_setting_when_given():
    # settings.channel_secret: MX_TRAINING_CHANNEL_SECRET, None when unset or empty
    assert job_secret({"a": 1}, "s") == job_secret({"b": 2}, "s") != job_secret({"a": 1}, "t")
    assert job_secret({"a": 1}) == job_secret(json.loads('{"a": 1}'), None) != job_secret({"a": 2})


@pytest.mark.parametrize("given", ["\u00e9" * 64, "a" * 63 + "\udcff", "", "0" * 64, 5, None, ["x"]])
def test_anything_but_the_proof_is_refused_without_raising(given):
    from mx_training_toolkit.messages import verify

    secret = job_secret({"sagemaker_job_name": "j"})
    identity = job_identity("j", ["algo-1", "algo-2"], 8000)
    assert verify(given, secret, "n1", "algo-2", identity) is False
    assert verify(proof(secret, "n1", "algo-2", identity), secret, "n1", "algo-2", identity) is True


def test_the_first_hosts_welcome_cannot_stand_for_a_hello_or_the_other_way_round():
    from mx_training_toolkit.messages import verify

    secret = job_secret({"sagemaker_job_name": "j"})
    identity = job_identity("j", ["algo-1", "algo-2"], 8000)
    welcome = proof(secret, "n1", "algo-1", identity, "welcome")
    assert verify(welcome, secret, "n1", "algo-1", identity, "welcome")
    assert not verify(welcome, secret, "n1", "algo-1", identity)  # not a hello
    assert not verify(proof(secret, "n1", "algo-1", identity), secret, "n1", "algo-1", identity, "welcome")


@pytest.mark.parametrize("value, ok", [("0" * 32, True), ("a1" * 16, True), ("A" * 32, False), ("0" * 31, False),
                                       (None, False), (5, False), ("g" * 32, False)])
def test_a_nonce_is_32_hex_digits(value, ok):
    from mx_training_toolkit.messages import is_nonce

    assert is_nonce(value) is ok


@pytest.mark.parametrize("age,read", [(1.5, 1.5), (0, 0.0), (-3, 0.0), ("2", 0.0), (True, 0.0), (None, 0.0),
                                      (float("nan"), 0.0), (1e12, 3600.0)])
def test_a_failures_age_is_read_within_bounds(age, read):
    from mx_training_toolkit.messages import reported_age

    assert reported_age({"t": "failed", "age": age}) == read


def test_a_failure_message_carries_its_age():
    from mx_training_toolkit.messages import failure_message, reported_age
    from mx_training_toolkit.outcome import JobResult

    message = json.loads(json.dumps(failure_message(JobResult("worker", "algo-2", 1), age=0.12345)))
    assert reported_age(message) == 0.123


def test_a_verdict_goes_over_the_wire_with_its_other_failures_without_their_stderr():
    from mx_training_toolkit.jobrules import ALL_DONE, Verdict
    from mx_training_toolkit.messages import MAX_OTHERS, OTHER_TEXT, reported_verdict, verdict_message
    from mx_training_toolkit.outcome import JobResult

    assert verdict_message(ALL_DONE) == {"t": "all-done"}
    root = JobResult("worker", "algo-3", 7, ("Traceback", "ValueError: x"), reason="ValueError: x", rank=5,
                     recorded=True)
    others = tuple(JobResult("worker", "algo-2", 1, ("tb",), reason="E" * 5000, rank=i, consequence=True)
                   for i in range(MAX_OTHERS + 5))
    message = json.loads(json.dumps(verdict_message(Verdict(root, others))))
    assert message["t"] == "abort" and len(json.dumps(message)) < MAX_MESSAGE
    got_root, got_others = reported_verdict(message)
    assert got_root == root
    assert len(got_others) == MAX_OTHERS
    assert got_others[3] == others[3]._replace(stderr_tail=(), reason="E" * OTHER_TEXT)


@pytest.mark.parametrize("others", [None, "x", [1, "y", None], {"t": "failed"}])
def test_an_abort_with_malformed_others_still_names_its_root(others):
    from mx_training_toolkit.messages import reported_verdict

    root, got = reported_verdict({"t": "abort", "host": "algo-2", "status": 4, "others": others})
    assert (root.host, root.status, got) == ("algo-2", 4, ())
