"""A damaged, edited or missing saved model gets ONE clear error naming the folder and the file (never a raw
SafetensorError, JSONDecodeError, KeyError or a state_dict dump), and save never loses what was there.

Each test saves a tiny fitted model (AR, and AR-Net after one epoch) to tmp_path and damages it.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tsforecast
import tsforecast.io as tsio
from tsforecast import AR, Forecaster

PACKAGE_DIR = Path(tsforecast.__file__).resolve().parent


def make_frame(n=120, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 2)).cumsum(axis=0), columns=["a", "b"],
                        index=pd.date_range("2021-01-01", periods=n, freq="h"))


@pytest.fixture(scope="module")
def fitted() -> dict[str, Forecaster]:
    frame = make_frame()
    common = {"lookback": 8, "horizon": 4, "device": "cpu", "random_state": 0}
    return {"ar": Forecaster(model="ar", **common).fit(frame),
            "arnet": Forecaster(model="arnet", max_epochs=1, **common).fit(frame),
            "ar4": Forecaster(model=AR(order=4), **common).fit(frame)}


def saved(fitted, tmp_path, name="ar") -> Path:
    folder = tmp_path / "my_model"
    fitted[name].save(folder)
    return folder


def edit_config(folder: Path, change) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def load_error(folder, exc_type, *fragments) -> str:
    """Loading ``folder`` raises exactly ``exc_type`` from tsforecast's code, with a short message that names
    the folder and contains every fragment; the raw library error is not chained into the traceback."""
    with pytest.raises(exc_type) as info:
        Forecaster.load(folder)
    assert type(info.value) is exc_type, f"{type(info.value).__name__}: {info.value}"
    assert PACKAGE_DIR in Path(str(info.traceback[-1].path)).resolve().parents
    assert info.value.__suppress_context__ or info.value.__context__ is None  # no "During handling of ..." dump
    message = str(info.value)
    assert str(folder) in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert len(message) < 600, message
    return message


# ---------------------------------------------------------------------- model.safetensors
@pytest.mark.parametrize("model", ["ar", "arnet"])
@pytest.mark.parametrize("damage", ["truncated", "one byte short", "empty", "garbage", "text"])
def test_damaged_weights_file(model, damage, fitted, tmp_path):
    folder = saved(fitted, tmp_path, model)
    weights = folder / "model.safetensors"
    raw = weights.read_bytes()
    weights.write_bytes({"truncated": raw[:len(raw) // 2], "one byte short": raw[:-1], "empty": b"",
                         "garbage": np.random.default_rng(0).bytes(300), "text": b"not weights\n" * 20}[damage])
    load_error(folder, ValueError, "my_model/model.safetensors is truncated or not a safetensors file",
               "re-save the model")


def test_weights_from_another_model(fitted, tmp_path):
    folder = saved(fitted, tmp_path, "ar")
    fitted["arnet"].save(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "model.safetensors", folder / "model.safetensors")
    load_error(folder, ValueError, "my_model/model.safetensors does not fit the model",
               "my_model/config.json describes ('ar', lookback 8, 2 columns)", "2 missing: linear.bias, linear.weight",
               "2 unexpected: body.bias, body.weight")


def test_weights_without_history(fitted, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = saved(fitted, tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["history"]
    save_file(tensors, str(folder / "model.safetensors"))
    load_error(folder, ValueError, "my_model/model.safetensors does not fit", "no 'history' tensor")


# ---------------------------------------------------------------------- config.json
def test_broken_json(fitted, tmp_path):
    folder = saved(fitted, tmp_path)
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text[: len(text) // 2])
    message = load_error(folder, ValueError, "my_model/config.json is not valid JSON (", "re-save the model")
    assert " at line " in message and " column " in message


def test_config_not_text(fitted, tmp_path):
    folder = saved(fitted, tmp_path)
    (folder / "config.json").write_bytes(b"\xff\xfe\x00garbage\x80")
    load_error(folder, ValueError, "my_model/config.json is not text")


def test_config_not_an_object(fitted, tmp_path):
    folder = saved(fitted, tmp_path)
    (folder / "config.json").write_text("[1, 2, 3]")
    load_error(folder, ValueError, "my_model/config.json holds a JSON list")


def test_config_of_another_format_version(fitted, tmp_path):
    folder = saved(fitted, tmp_path)
    edit_config(folder, lambda c: c.update(format_version=99))
    load_error(folder, ValueError, "my_model/config.json has format version 99; this tsforecast reads 1")


def test_config_names_an_unknown_model(fitted, tmp_path):
    folder = saved(fitted, tmp_path)
    edit_config(folder, lambda c: c["params"]["model"].update(name="nosuch"))
    load_error(folder, ValueError, "my_model/config.json is damaged or was edited (unknown model 'nosuch'; known models: ar, arnet")


@pytest.mark.parametrize("source, target, missing, unexpected", [
    ("ar", "arnet", "linear.bias, linear.weight", "body.bias, body.weight"),
    ("arnet", "ar", "body.bias, body.weight", "linear.bias, linear.weight"),
])
def test_config_edited_to_another_known_model(source, target, missing, unexpected, fitted, tmp_path):
    folder = saved(fitted, tmp_path, source)
    edit_config(folder, lambda c: c["params"]["model"].update(name=target, params={"order": None}))
    load_error(folder, ValueError, "my_model/model.safetensors does not fit the model",
               f"describes ({target!r}, lookback 8, 2 columns)", f"missing: {unexpected}", f"unexpected: {missing}")


def test_config_edited_model_params_give_mis_shaped_weights(fitted, tmp_path):
    folder = saved(fitted, tmp_path, "ar4")
    edit_config(folder, lambda c: c["params"]["model"]["params"].update(order=6))
    load_error(folder, ValueError, "my_model/model.safetensors does not fit",
               "mis-shaped: linear.weight (saved (2, 4), expected (2, 6))")


def test_many_mismatched_weights_are_summarized(fitted, tmp_path):
    folder = saved(fitted, tmp_path, "arnet")
    edit_config(folder, lambda c: c["params"]["model"]["params"].update(hidden_layers={"__tuple__": [16, 16]}))
    message = load_error(folder, ValueError, "my_model/model.safetensors does not fit", "6 missing: ", ", ...")
    assert message.count("body.") <= 6  # the first few names of each kind, not the whole state_dict


@pytest.mark.parametrize("change, fragment", [
    (lambda c: c["params"].update(lookback=16), "history_index has 8 timestamps for lookback 16"),
    (lambda c: c["state"].update(columns=["a", "b", "c"]), "the columns ['a', 'b', 'c'] are not the targets"),
        (lambda c: c["state"].update(columns=["a", "b", "c"], roles={"targets": ["a", "b", "c"], "past": [], "future": []}),
         "the scaler has 2 mean values for 3 columns"),
    (lambda c: c["params"].update(lookback="abc"), "The 'lookback' parameter of Forecaster must be an int"),
    (lambda c: c["params"]["model"]["params"].update(order=99), "order 99 exceeds lookback 8"),
    (lambda c: c["params"]["model"]["params"].update(depth=3), "model 'ar' has no parameter(s) ['depth']"),
    (lambda c: c["params"].update(colour="red"), "unexpected keyword argument 'colour'"),
])
def test_config_with_edited_shapes_or_values(change, fragment, fitted, tmp_path):
    folder = saved(fitted, tmp_path)
    edit_config(folder, change)
    load_error(folder, ValueError, "my_model/config.json is damaged or was edited (", fragment, "re-save the model")


@pytest.mark.parametrize("section, key", [(None, "params"), (None, "state"), ("state", "scalers"),
                                          ("state", "columns"), ("state", "history_indexes"), ("params", "model")])
def test_config_with_a_missing_key(section, key, fitted, tmp_path):
    folder = saved(fitted, tmp_path)
    edit_config(folder, lambda c: (c if section is None else c[section]).pop(key))
    # without the key, loading falls back to the key of files saved before panels, and names that one
    looked_for = {"scalers": "scaler", "history_indexes": "history_index"}.get(key, key)
    load_error(folder, ValueError, f"my_model/config.json is damaged or was edited (missing key {looked_for!r})")


# ---------------------------------------------------------------------- missing files
@pytest.mark.parametrize("missing", ["model.safetensors", "config.json"])
def test_missing_file(missing, fitted, tmp_path):
    folder = saved(fitted, tmp_path)
    (folder / missing).unlink()
    load_error(folder, FileNotFoundError, "my_model is not a saved tsforecast model", f"it lacks {missing}")


def test_missing_folder(tmp_path):
    load_error(tmp_path / "my_model", FileNotFoundError, "my_model is not a saved tsforecast model: it does not exist")


def test_intact_model_still_loads(fitted, tmp_path):
    for name, forecaster in fitted.items():
        forecaster.save(tmp_path / name)
        pd.testing.assert_frame_equal(Forecaster.load(tmp_path / name).predict(), forecaster.predict())


# ---------------------------------------------------------------------- save: clear errors, nothing lost
def _listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def test_save_under_a_file(fitted, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(NotADirectoryError, match=r"cannot save to .*notes.txt/my_model: .*notes.txt is a file"):
        fitted["ar"].save(tmp_path / "notes.txt" / "my_model")
    assert _listing(tmp_path) == {"notes.txt": b"keep me"}


def test_save_to_an_existing_file_names_it(fitted, tmp_path):
    (tmp_path / "my_model").write_text("precious")
    with pytest.raises(FileExistsError, match=r"my_model exists and is a file, not a saved tsforecast model; refusing"):
        fitted["ar"].save(tmp_path / "my_model")
    assert _listing(tmp_path) == {"my_model": b"precious"}


def test_save_to_a_folder_without_write_permission(fitted, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root may write anywhere: deny it the way a locked folder would
        real_access = os.access
        monkeypatch.setattr(tsio.os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    locked.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=r"cannot save to .*locked/my_model: no permission to write in .*locked"):
            fitted["ar"].save(locked / "my_model")
    finally:
        locked.chmod(0o755)
    assert list(locked.iterdir()) == []


def test_failed_replace_keeps_the_previous_model(fitted, tmp_path, monkeypatch):
    folder = saved(fitted, tmp_path, "ar")
    before = _listing(folder)
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == folder and Path(src).name.startswith(".my_model."):  # the new model moving in
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(tsio.os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        fitted["arnet"].save(folder)
    monkeypatch.undo()
    assert _listing(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_model"]  # no temporary folders left
    pd.testing.assert_frame_equal(Forecaster.load(folder).predict(), fitted["ar"].predict())
