"""WiSE-FT: the weight-space average with the base, and moving a saved average to another weight."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import build_tiny_model

from hf_softnce.training.wise_ft import interpolate_with_base, reweight


@pytest.fixture(scope="module")
def pair():
    return build_tiny_model(seed=1), build_tiny_model(seed=2)  # "fine-tuned" and base: two different weight sets


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def test_interpolate_is_the_weighted_average_of_each_tensor(pair):
    tuned, base = pair
    averaged = interpolate_with_base(copy.deepcopy(tuned), base, 0.75)
    expected = {k: 0.25 * base.state_dict()[k] + 0.75 * v for k, v in weights(tuned).items()}
    for name, value in weights(averaged).items():
        torch.testing.assert_close(value, expected[name])


@pytest.mark.parametrize("weight", [1.0, 0.5, 0.0])
def test_reweight_equals_averaging_the_fine_tuned_model_at_the_new_weight(pair, weight):
    tuned, base = pair
    saved = interpolate_with_base(copy.deepcopy(tuned), base, 0.75)
    moved = weights(reweight(saved, base, 0.75, weight))
    direct = weights(interpolate_with_base(copy.deepcopy(tuned), base, weight))
    assert moved.keys() == direct.keys()
    for name in direct:
        torch.testing.assert_close(moved[name], direct[name], rtol=1e-5, atol=1e-6)


def test_reweight_refuses_a_saved_weight_of_zero_and_weights_outside_0_1(pair):
    tuned, base = pair
    with pytest.raises(ValueError, match="0 < saved_weight <= 1"):
        reweight(copy.deepcopy(tuned), base, 0.0, 1.0)
    with pytest.raises(ValueError, match="got 0.75, 1.5"):
        reweight(copy.deepcopy(tuned), base, 0.75, 1.5)


def test_a_weight_shared_by_two_layers_is_averaged_once_and_another_shape_is_refused():
    """T5's encoder shares its embedding (shared.weight is encoder.embed_tokens.weight): the state dict lists it twice,
    the average must move it once, like every other tensor; reweight too."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(vocab_size=50, d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2)
    torch.manual_seed(0)
    base = T5EncoderModel(config)
    tuned = copy.deepcopy(base)
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(1.0)  # the fine-tuning: +1 everywhere
    assert tuned.shared.weight.data_ptr() == tuned.encoder.embed_tokens.weight.data_ptr()
    averaged = interpolate_with_base(copy.deepcopy(tuned), base, 0.5)
    for name, value in weights(averaged).items():
        torch.testing.assert_close(value, base.state_dict()[name] + 0.5, msg=name)
    moved = reweight(averaged, base, 0.5, 1.0)
    for name, value in weights(moved).items():
        torch.testing.assert_close(value, base.state_dict()[name] + 1.0, msg=name)
    other = T5EncoderModel(T5Config(vocab_size=60, d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2))
    with pytest.raises(ValueError, match=r"^WiSE-FT: shared.weight is \(50, 8\) in the fine-tuned model but "
                                         r"\(60, 8\) in"):
        interpolate_with_base(copy.deepcopy(tuned), other, 0.5)
