"""The U-Net used for fine-tuning: shapes, grey input, and that a pretrained encoder really lands in it."""

import pytest
import torch

from edenkit.checkpoint import load_into_unet, random_state_dict
from edenkit.models.segmentation import SegmentationUNet


def test_grey_in_logits_out():
    model = SegmentationUNet("resnet18", classes=2, decoder_channels=(32, 16, 16, 8, 8)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 64, 64))
    assert out.shape == (2, 2, 64, 64)


def test_size_not_multiple_of_32_is_a_clear_error():
    model = SegmentationUNet("resnet18", classes=1, decoder_channels=(32, 16, 16, 8, 8))
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.rand(1, 1, 50, 64))


def test_pretrained_encoder_changes_the_output():
    torch.manual_seed(0)
    model = SegmentationUNet("resnet18", classes=1, decoder_channels=(32, 16, 16, 8, 8)).eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        before = model(x)
        load_into_unet(model.unet, random_state_dict("resnet18", seed=123))
        after = model(x)
    assert torch.equal(model.encoder.conv1.weight, random_state_dict("resnet18", seed=123)["conv1.weight"])
    assert not torch.allclose(before, after)


def test_unknown_arch():
    with pytest.raises(ValueError, match="resnet18"):
        SegmentationUNet("vgg11")
