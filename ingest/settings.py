"""The one typed settings object of sohoa.

Sources, highest priority first: explicit keyword arguments, environment variables ``SOHOA_*``,
the config file ``$SOHOA_HOME/config.toml`` (written by ``sohoa init``), then the defaults below.
All state (config, keys, index, local objects) lives under ``SOHOA_HOME`` (default ``~/.sohoa``), so
several instances and test runs never collide. Stages never read settings themselves: the pipeline,
the CLI and the API build each package's own small config from this object and pass it in.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_HOME = Path("~/.sohoa")
CONFIG_FILE = "config.toml"
SECRET_FILE = "secret.key"


def home_from_env() -> Path:
    return Path(os.environ.get("SOHOA_HOME") or DEFAULT_HOME).expanduser().resolve()


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Values from ``$SOHOA_HOME/config.toml`` (flat keys, same names as the settings fields)."""

    def __init__(self, settings_cls: type[BaseSettings], home: Path) -> None:
        super().__init__(settings_cls)
        path = home / CONFIG_FILE
        self._values: dict[str, Any] = tomllib.loads(path.read_text("utf-8")) if path.exists() else {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._values.items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOHOA_", extra="ignore")

    home: Path = Field(default_factory=home_from_env)

    # Who converts (Decree 137 Art. 4 mark) and signs.
    agency_name: str = "Uỷ ban nhân dân phường Bến Nghé"
    agency_code: str = "000.00.12.H29"
    officer_name: str = "Nguyễn Thị Lan"
    desk: str = "Bộ phận Một cửa"
    system_name: str = "sohoa — Kho quản lý dữ liệu điện tử (bản phát triển)"
    lookup_base_url: str = "http://127.0.0.1:8000/v1/lookup/"

    # Repository
    store: Literal["local", "s3"] = "local"
    db_url: str | None = None  # default: SQLite under home
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "sohoa"
    s3_secure: bool = False
    s3_region: str | None = None
    object_lock: bool = True
    lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"

    # Signing
    signature_level: Literal["B-B", "B-T", "B-LT", "B-LTA"] = "B-B"
    officer_signature: bool = True  # Circular 01/2023 Art. 8: the scanning officer's personal signature
    tsa_url: str | None = None
    pki_base_url: str = "http://127.0.0.1:8799"
    agency_key: Path | None = None  # PKCS#12; default: the dev PKI under home
    officer_key: Path | None = None
    key_passphrase: str | None = None  # default: read from the dev PKI
    # Desk officers' personal keys on a PKCS#11 token/HSM (`sohoa users add --pkcs11-key`):
    # the module and the user PIN of the token(s) are server settings, like the agency key's
    # passphrase; the database holds only token and key labels (ingest.officers).
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_pin: str | None = None
    trust_roots: list[Path] = Field(default_factory=list)  # default: the dev PKI root

    # OCR
    ocr_lang: str = "vie"
    tessdata_dir: Path | None = None
    workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1))
    review_threshold: float = 0.6  # below: the document goes to review as "unknown"

    # Distributed bulk runs (Celery)
    broker_url: str = "redis://127.0.0.1:6379/0"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        home = Path(init_settings.init_kwargs.get("home") or home_from_env()).expanduser()
        return (init_settings, env_settings, _ConfigFileSource(settings_cls, home))

    # ---- derived locations -------------------------------------------------------------
    @property
    def pki_dir(self) -> Path:
        return self.home / "pki"

    @property
    def officers_dir(self) -> Path:
        """Desk officers' personal signing keys, re-encrypted with a key derived from the
        server secret (ingest.officers)."""
        return self.home / "officers"

    @property
    def objects_dir(self) -> Path:
        return self.home / "store"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.home / 'index.sqlite3'}"

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE

    @property
    def secret_path(self) -> Path:
        return self.home / SECRET_FILE

    def owner_secret(self) -> bytes:
        """The server secret keying owner HMACs and protecting stored IDs (made by ``sohoa init``)."""
        try:
            return bytes.fromhex(self.secret_path.read_text().strip())
        except FileNotFoundError as exc:
            raise SetupError(f"{self.secret_path} is missing: run `sohoa init` first") from exc

    def is_initialized(self) -> bool:
        return self.config_path.exists() and self.secret_path.exists()


class SetupError(RuntimeError):
    """The installation under SOHOA_HOME is missing or incomplete."""


def load_settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
