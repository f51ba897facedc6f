"""`continuum alias`: list/resolve output, and set/remove editing config.yaml in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from continuum_cli.cli import app
from continuum_cli.cli.alias_yaml import remove_alias, scalar, set_alias, verify
from continuum_cli.errors import ConfigError, ContinuumError

CONFIG = """\
# My router. Comments and order must survive every edit.
server:
  bind_address: 127.0.0.1:8000   # loopback only
backends:
  - name: gpu
    type: generic
    url: http://127.0.0.1:9000/v1
    models: [my-model, big-model]

# Claude Code's hard-coded names -> my models
model_aliases:
  haiku: my-model      # WebFetch / WebSearch side calls
  sonnet: big-model
  # opus: big-model    (not yet)

web_search:
  enabled: false
"""

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "name", "target", "expected"), [
    pytest.param("model_aliases:\n  a: x  # keep\n", "a", "y", "model_aliases:\n  a: y  # keep\n",
                 id="change_value_keeps_comment"),
    pytest.param("model_aliases:\n    a: x\nz: 1\n", "b", "y",
                 "model_aliases:\n    a: x\n    b: y\nz: 1\n", id="append_with_file_indent"),
    pytest.param("z: 1\n", "default", "m", "z: 1\nmodel_aliases:\n  default: m\n",
                 id="new_section"),
    pytest.param("z: 1", "default", "m", "z: 1\nmodel_aliases:\n  default: m\n",
                 id="new_section_no_final_newline"),
    pytest.param("model_aliases:  # none yet\nz: 1\n", "default", "m",
                 "model_aliases:  # none yet\n  default: m\nz: 1\n", id="empty_section"),
    pytest.param("model_aliases: {a: x}\n", "b", "y", "model_aliases: {a: x, b: y}\n",
                 id="flow_mapping"),
    pytest.param("model_aliases:\n  a: x\n", "qwen", "qwen2.5:7b",
                 "model_aliases:\n  a: x\n  qwen: 'qwen2.5:7b'\n", id="value_needing_quotes"),
    pytest.param("model_aliases:\n  a: |\n    x\nz: 1\n", "b", "y",
                 "model_aliases:\n  a: |\n    x\n  b: y\nz: 1\n", id="after_block_scalar"),
])
def test_set_alias_text(text: str, name: str, target: str, expected: str) -> None:
    assert set_alias(text, name, target) == expected


@pytest.mark.parametrize(("text", "name", "expected"), [
    pytest.param("model_aliases:\n  a: x  # c\n  b: y\nz: 1\n", "a",
                 "model_aliases:\n  b: y\nz: 1\n", id="first"),
    pytest.param("model_aliases:\n  a: x\n  b: y  # c\n# after\nz: 1\n", "b",
                 "model_aliases:\n  a: x\n# after\nz: 1\n", id="last_keeps_following_comment"),
    pytest.param("model_aliases:  # why\n  a: x\nz: 1\n", "a",
                 "model_aliases: {}  # why\nz: 1\n", id="only_entry_becomes_empty_mapping"),
    pytest.param("model_aliases: {a: x, b: y}\n", "a", "model_aliases: {b: y}\n", id="flow"),
])
def test_remove_alias_text(text: str, name: str, expected: str) -> None:
    assert remove_alias(text, name) == expected


@pytest.mark.parametrize("value", ["my-model", "a: b", "yes", "123", "x #y", "org/m-7B"])
def test_scalar_round_trips(value: str) -> None:
    import yaml

    assert yaml.safe_load(f"k: {scalar(value)}") == {"k": value}


def test_remove_unknown_alias_is_an_error() -> None:
    with pytest.raises(ContinuumError, match="there is no alias `nope`"):
        remove_alias("model_aliases:\n  a: x\n", "nope")


def test_section_that_is_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        set_alias("model_aliases: [a, b]\n", "c", "d")


def test_verify_refuses_an_edit_that_changes_more() -> None:
    old = "z: 1\nmodel_aliases:\n  a: x\n"
    with pytest.raises(ContinuumError, match="could not edit c.yaml safely"):
        verify(old, "z: 2\nmodel_aliases:\n  a: y\n", {"a": "y"}, "c.yaml")
    with pytest.raises(ConfigError):
        verify("model_aliases: {}\n", "model_aliases:\n  a: [1]\n", {"a": [1]},  # type: ignore
               "c.yaml")


def test_set_and_remove_round_trip_preserves_comments(config: Path) -> None:
    code, _, err = invoke("alias", "set", "opus", "big-model", "--config", str(config))
    assert code == 0, err
    edited = config.read_text(encoding="utf-8")
    assert "  sonnet: big-model\n  opus: big-model\n  # opus: big-model    (not yet)\n" in edited
    assert edited.replace("  opus: big-model\n", "", 1) == CONFIG
    assert "model_aliases.opus = big-model" in err

    code, _, err = invoke("alias", "remove", "opus", "--config", str(config))
    assert code == 0, err
    assert config.read_text(encoding="utf-8") == CONFIG


def test_set_changes_only_the_value(config: Path) -> None:
    invoke("alias", "set", "haiku", "big-model", "--config", str(config))
    assert config.read_text(encoding="utf-8") == CONFIG.replace(
        "haiku: my-model      #", "haiku: big-model      #")


def test_set_keeps_the_file_mode(config: Path) -> None:
    config.chmod(0o600)
    invoke("alias", "set", "default", "my-model", "--config", str(config))
    assert config.stat().st_mode & 0o777 == 0o600
    assert list(config.parent.glob(".config.yaml.*")) == []


def test_set_warns_about_an_unserved_target(config: Path) -> None:
    code, _, err = invoke("alias", "set", "default", "ghost", "--config", str(config))
    assert code == 0
    assert "no backend lists `ghost`" in err


def test_remove_unknown_exits_1_and_leaves_the_file(config: Path) -> None:
    code, _, err = invoke("alias", "remove", "opus", "--config", str(config))
    assert code == 1
    assert "there is no alias `opus`" in err
    assert config.read_text(encoding="utf-8") == CONFIG


def test_set_without_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("alias", "set", "default", "m")
    assert code == 1
    assert "no config file to edit" in err


def test_list_json(config: Path) -> None:
    code, out, _ = invoke("alias", "list", "--config", str(config), "--json")
    assert code == 0
    rows = {r["alias"]: r for r in json.loads(out)["aliases"]}
    assert rows["haiku"] == {"alias": "haiku", "target": "my-model", "backend": "gpu",
                             "matches": "names containing 'haiku'",
                             "catches": ["claude-haiku-4-5-20251001",
                                         "claude-3-5-haiku-latest"]}
    assert rows["sonnet"]["catches"] == ["claude-sonnet-4-5"]


def test_list_table(config: Path) -> None:
    code, out, _ = invoke("alias", "list", "--config", str(config))
    assert code == 0
    assert "haiku" in out and "big-model" in out and "claude-sonnet-4-5" in out


@pytest.mark.parametrize(("model", "rule", "alias", "target", "code"), [
    pytest.param("claude-haiku-4-5-20251001", "family", "haiku", "my-model", 0, id="family"),
    pytest.param("big-model", "backend", None, "big-model", 0, id="served_directly"),
    pytest.param("claude-opus-5-5", "not_found", None, None, 1, id="not_found"),
])
def test_resolve_json(config: Path, model: str, rule: str, alias: str | None,
                      target: str | None, code: int) -> None:
    exit_code, out, _ = invoke("alias", "resolve", model, "--config", str(config), "--json")
    data = json.loads(out)
    assert exit_code == code
    assert (data["rule"], data["alias"], data["target"]) == (rule, alias, target)


def test_resolve_explains(config: Path) -> None:
    invoke("alias", "set", "default", "big-model", "--config", str(config))
    code, out, _ = invoke("alias", "resolve", "claude-opus-5-5", "--config", str(config))
    assert code == 0
    assert out.strip() == "claude-opus-5-5 -> big-model on backend gpu (`default` alias)"
    invoke("alias", "set", "claude-opus-5-5", "my-model", "--config", str(config))
    _, out, _ = invoke("alias", "resolve", "claude-opus-5-5", "--config", str(config))
    assert out.strip() == "claude-opus-5-5 -> my-model on backend gpu (exact alias)"


def test_resolve_not_found_text(config: Path) -> None:
    code, out, err = invoke("alias", "resolve", "claude-opus-5-5", "--config", str(config))
    assert code == 1
    assert out.strip() == "claude-opus-5-5: not found (Model claude-opus-5-5 not found)"
    assert "model_aliases" in err
