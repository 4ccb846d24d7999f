import pytest

from sagemaker_emu.schemas.java_regex import java_matches, translate


@pytest.mark.parametrize(
    "pattern,value,expected",
    [
        # The model's patterns match whole values, anchored or not.
        ("[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "my-endpoint", True),
        ("[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "my-endpoint!", False),
        ("[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "ok\nbad", False),
        ("\\p{ASCII}*", "plain ascii", True),
        ("\\p{ASCII}*", "caf\u00e9", False),
        ("\\A\\S[\\p{Print}]*\\z", "id-1 with spaces", True),
        ("\\A\\S[\\p{Print}]*\\z", " leading-space", False),
        ("\\A\\S[\\p{Print}]*\\z", "tab\tinside", False),
        # Tag keys and values: letters, numbers and separators of any script.
        ("([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)", "Team: ML/Ops = ja\u65e5\u672c 42", True),
        ("([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)", "no\ttabs", False),
        ("([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)", "no*stars", False),
        ("(arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:[0-9]{12}:[a-z\\-]*\\/)?([a-zA-Z0-9]([a-zA-Z0-9-]){0,62})(?<!-)(\\/[0-9]{1,9})?", "pkg-1/3", True),
        ("(arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:[0-9]{12}:[a-z\\-]*\\/)?([a-zA-Z0-9]([a-zA-Z0-9-]){0,62})(?<!-)(\\/[0-9]{1,9})?", "pkg-", False),
    ],
)
def test_java_patterns_match_whole_values(pattern, value, expected):
    assert java_matches(pattern, value) is expected


def test_translation_wraps_classes_only_outside_brackets():
    assert translate("\\p{ASCII}*") == "[\\x00-\\x7f]*"
    assert translate("[\\p{Print}]") == "[\\x20-\\x7e]"
    assert translate("a\\z") == "a\\Z"
