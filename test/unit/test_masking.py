import json

import pytest

from mx_training_toolkit import masking
from mx_training_toolkit.masking import MASK, Masker


@pytest.mark.parametrize("name", [
    "db_password", "DB_PASSWORD", "passwd", "my-passphrase", "client_secret", "api_token", "API-KEY", "apikey",
    "aws_access_key_id", "private_key_path", "credentials", "auth", "oauth_header", "request_signature",
])
def test_secret_names(name):
    assert masking.looks_secret(name)


@pytest.mark.parametrize("name", ["epochs", "learning_rate", "key_size", "keep_prob", "monkey", "batch_size"])
def test_ordinary_names(name):
    assert not masking.looks_secret(name)


def test_mask_secrets_recurses_and_masks_a_secrets_own_values_whole():
    hps = {"db": {"password": "hunter22", "host": "h"}, "servers": [{"token": "t0k3n", "port": 1}],
           "auth": {"user": "bob", "pw": "abc123"}, "epochs": 3}
    assert masking.mask_secrets(hps) == {"db": {"password": MASK, "host": "h"}, "servers": [{"token": MASK, "port": 1}],
                                         "auth": MASK, "epochs": 3}


def test_values_are_replaced_in_every_form_they_are_written():
    masker = Masker({"db_password": 'hun"ter2', "db": {"Password": "nested-pw"}, "auth": {"user": "bob", "pw": "abc123"},
                     "api_token": ["tok-one", "tok-two"], "epochs": 3})
    assert masker('--db_password hun"ter2 --epochs 3') == "--db_password ******** --epochs 3"
    assert masker(json.dumps({"x": 'hun"ter2'})) == '{"x": "********"}'  # JSON-escaped
    assert masker("--db password=nested-pw") == "--db password=********"
    assert masker("--auth pw=abc123,user=bob") == "--auth ********"  # the argument as the script gets it
    assert masker("user bob, pw abc123") == "user ********, pw ********"  # all of a secret is secret
    assert masker("--api_token ['tok-one', 'tok-two']") == "--api_token ********"
    assert masker("error: tok-two") == "error: ********"


def test_short_values_and_switches_are_left_alone():
    masker = Masker({"auth": "ab", "use_auth": True, "token_type": None, "secret": "xyz"})
    assert masker("--auth ab --use_auth True --rate 0.1 --x xyz") == "--auth ab --use_auth True --rate 0.1 --x ********"


def test_a_number_is_replaced_only_where_it_stands_alone():
    masker = Masker({"pin_password": 123456})
    assert masker("--pin_password 123456 --seed 1234567 v0.123456 pin 123456.") == \
        "--pin_password ******** --seed 1234567 v0.123456 pin ********."


def test_a_secret_that_contains_another_is_replaced_whole():
    masker = Masker({"secret_a": "abc", "secret_b": "xxabcxx"})
    assert masker("xxabcxx abc") == "******** ********"


def test_a_line_cut_inside_a_secret_has_its_end_masked():
    masker = Masker({"api_token": "t0k3n-0123456789", "epochs": 3})
    assert masker("error: --api_token t0k3n-01\n--epochs 3 t0k\nnext t0") == \
        "error: --api_token ********\n--epochs 3 ********\nnext t0"
    assert masker("no secret at the end: t0k3n-x") == "no secret at the end: t0k3n-x"


def test_mask_uses_the_masker_in_use():
    assert masking.mask("hunter22") == "hunter22"
    masking.use(Masker({"password": "hunter22"}))
    try:
        assert masking.mask("pw hunter22") == "pw ********"
    finally:
        masking.use(None)
    assert masking.mask("hunter22") == "hunter22"


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own():
    key = "-----BEGIN KEY-----\nAAAA1111\nab\nBBBB2222\n-----END KEY-----"
    masker = Masker({"private_key": key, "epochs": 3})
    assert masker("key: " + key) == "key: " + MASK  # whole where it is whole
    assert masker("BBBB2222\n-----END KEY-----\nnext") == MASK + "\n" + MASK + "\nnext"  # a window inside it
    assert masker("ab cd") == "ab cd"  # a line too short to be searched for
    assert masker.reach == len(json.dumps(key)) - 2  # the longest form (JSON-escaped, unquoted), in bytes


def test_reach_counts_bytes_and_is_zero_without_a_masker():
    assert Masker({"api_token": "\u00e9\u00e9\u00e9"}).reach == len("\\xc3\\xa9") * 3  # its bytes' repr is longest
    assert Masker({"epochs": 3}).reach == 0
    masking.use(None)
    assert masking.reach() == 0


@pytest.mark.parametrize("secret, shown", [
    ("it's \"quoted\"", lambda s: "%r" % s),  # both quote kinds: repr escapes one of them
    ("p\u00e4ss-w\u00f6rd", lambda s: "%r" % s.encode()),  # non-ASCII, shown as bytes
    ("p\u00e4ss-w\u00f6rd", lambda s: "%a" % s),
    ("tab\there", lambda s: "%r" % s),
])
def test_python_spellings_of_a_secret_are_masked(secret, shown):
    from mx_training_toolkit.masking import MASK, Masker

    text = "connect(password={})".format(shown(secret))
    masked = Masker({"db_password": secret})(text)
    assert MASK in masked
    assert masked.count(MASK) == 1 and len(masked) < len(text) + len(MASK)
