"""Which account a caller is: the access key that signed its request, mapped to an account.

AWS knows each key's account; the emulator learns it from `serve --accounts FILE`, a file in
the AWS shared-credentials format whose profiles give `aws_access_key_id` and `aws_account_id`
(the name botocore reads an account id under), and from the keys themselves: an access key of
twelve digits is that account, as LocalStack treats one. Any other key, and an unsigned
request, is the default account (`--account-id`, 123456789012).
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from sagemaker_emu.config import Config

_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
_ACCOUNT = re.compile(r"\d{12}")


class Accounts:
    def __init__(self, default: str, keys: Mapping[str, str] | None = None) -> None:
        self.default = default
        self.keys = dict(keys or {})  # access key id -> account id

    @classmethod
    def from_file(cls, path: str | Path, default: str) -> "Accounts":
        parser = configparser.ConfigParser()
        parser.read_string(Path(path).read_text())
        keys = {}
        for section in parser.sections():
            profile = parser[section]
            if "aws_access_key_id" in profile and "aws_account_id" in profile:
                account = profile["aws_account_id"].strip()
                if not _ACCOUNT.fullmatch(account):
                    raise ValueError(f"{path}: profile {section}: aws_account_id must be twelve digits, not {account!r}")
                keys[profile["aws_access_key_id"].strip()] = account
        if not keys:
            raise ValueError(f"{path}: no profile with aws_access_key_id and aws_account_id")
        return cls(default, keys)

    @classmethod
    def of_config(cls, config: "Config") -> "Accounts":
        return cls.from_file(config.accounts_file, config.account) if config.accounts_file else cls(config.account)

    def of_key(self, access_key: str | None) -> str:
        if not access_key:
            return self.default
        return self.keys.get(access_key) or (access_key if _ACCOUNT.fullmatch(access_key) else self.default)

    def of_authorization(self, authorization: str | None) -> str:
        """The account of a SigV4 Authorization header's access key."""
        match = _ACCESS_KEY.search(authorization) if authorization else None
        return self.of_key(match.group(1) if match else None)
