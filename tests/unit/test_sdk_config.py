"""The SageMaker SDK config file the emulator's variables name (sdk_config.py)."""

from sagemaker_emu import sdk_config


def test_names_the_default_bucket_the_sdk_would_choose(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(sdk_config.VARIABLE, raising=False)
    variables = sdk_config.environment(tmp_path / "cache", "eu-west-1", "123456789012")
    path = tmp_path / "cache" / "sagemaker-sdk-config-eu-west-1-123456789012.yaml"
    assert variables == {sdk_config.VARIABLE: str(path)}
    assert "        DefaultS3Bucket: sagemaker-eu-west-1-123456789012\n" in path.read_text()
    assert sdk_config.environment(tmp_path / "cache", "eu-west-1", "123456789012") == variables  # again: same file


def test_a_users_own_sdk_config_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(sdk_config.VARIABLE, "/somewhere/config.yaml")
    assert sdk_config.environment(tmp_path / "cache", "us-east-1", "123456789012") == {}
    monkeypatch.delenv(sdk_config.VARIABLE)
    (tmp_path / ".config" / "sagemaker").mkdir(parents=True)
    (tmp_path / ".config" / "sagemaker" / "config.yaml").write_text("SchemaVersion: '1.0'\n")
    assert sdk_config.environment(tmp_path / "cache", "us-east-1", "123456789012") == {}
    assert not (tmp_path / "cache").exists()


def test_a_directory_that_cannot_be_written_offers_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(sdk_config.VARIABLE, raising=False)
    (tmp_path / "a-file").write_text("")
    assert sdk_config.environment(tmp_path / "a-file" / "cache", "us-east-1", "123456789012") == {}
