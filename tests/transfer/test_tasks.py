"""Transfer tasks: the mask grouping and the phantom and SCR splits."""

import pytest
import torch

from edenkit.phantom.export import export_jsrt_scr
from edenkit.transfer.tasks import MaskGroups, transfer_splits


def test_mask_groups_union():
    masks = torch.zeros(3, 2, 2)
    masks[1, 0, 0] = 1
    masks[2, 1, 1] = 1
    base = [{"image": torch.zeros(1, 2, 2), "masks": masks}]
    ds = MaskGroups(base, {"clavicle": ("r", "l"), "heart": ("h",)}, structures=("h", "r", "l"))
    out = ds[0]["masks"]
    assert out.shape == (2, 2, 2)
    assert out[0].tolist() == [[1, 0], [0, 1]] and out[1].sum() == 0
    with pytest.raises(KeyError, match="lung"):
        MaskGroups(base, {"x": ("lung",)}, structures=("h", "r", "l"))


def test_phantom_transfer_tasks():
    train, val, test, classes = transfer_splits("phantom_clavicle", size=32, seed=0, phantom_counts=(3, 2, 2))
    assert classes == ("clavicle",) and (len(train), len(val), len(test)) == (3, 2, 2)
    assert train[0]["masks"].shape == (1, 32, 32)
    train, _, _, classes = transfer_splits("phantom_findings", size=32, seed=0, phantom_counts=(2, 2, 2))
    assert classes == ("cardiomegaly", "effusion", "nodule", "pneumothorax") and train[0]["labels"].shape == (4,)
    with pytest.raises(ValueError, match="data root"):
        transfer_splits("scr_heart", size=32)
    with pytest.raises(KeyError, match="phantom_heart"):
        transfer_splits("nope", size=32)


def test_scr_transfer_task_reads_the_real_format(tmp_path):
    """SCR through the real loader, on phantoms written in the JSRT/SCR layout: fold 1 -> train/val, fold 2 -> test."""
    export_jsrt_scr(tmp_path / "data", n=8, seed=0, size=64)
    train, val, test, classes = transfer_splits("scr_clavicle", size=32, seed=0, data_root=tmp_path / "data",
                                                val_fraction=0.25)
    assert classes == ("clavicle",)
    assert len(train) + len(val) == 4 and len(val) >= 1 and len(test) == 4
    item = test[0]
    assert item["masks"].shape == (1, 32, 32) and item["masks"].sum() > 0
    train_ids = {train[i]["image_id"] for i in range(len(train))}
    assert train_ids.isdisjoint({val[i]["image_id"] for i in range(len(val))})
