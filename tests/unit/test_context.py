from sagemaker_emu.protocol.context import is_waiter, region_of

UA = ("Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6 md/arch#x86_64 lang/python#3.11.7 "
      "md/pyimpl#CPython m/E,N,b,e,{} cfg/retry-mode#standard Botocore/1.44.8")


def test_waiter_feature_is_read_from_the_user_agent():
    assert is_waiter(UA.format("B,Z"))
    assert not is_waiter(UA.format("Z"))
    assert not is_waiter("Boto3/1.20.0 Python/3.8 Botocore/1.23.0")  # older botocore: no features
    assert not is_waiter(None)


def test_region_comes_from_the_sigv4_scope():
    auth = "AWS4-HMAC-SHA256 Credential=AKID/20261126/eu-west-1/sagemaker/aws4_request, SignedHeaders=host"
    assert region_of(auth, "us-east-1") == "eu-west-1"
    assert region_of(None, "us-east-1") == "us-east-1"
    assert region_of("Bearer x", "us-east-2") == "us-east-2"
