"""JSON Schema of the config file, generated from the pydantic models.

`schemas/mox.schema.json` is this output, committed; a test fails when the two differ.
"""

from __future__ import annotations

import json

from mox.config.model import Config

__all__ = ["SCHEMA_ID", "schema_json"]

SCHEMA_ID = "https://mox.example/schemas/mox.schema.json"


def schema_json() -> str:
    """The JSON Schema (draft 2020-12) for `mox.toml`/`mox.json`, as stable, indented text."""
    schema = Config.model_json_schema(mode="validation")
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
