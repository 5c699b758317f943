"""SSB training: all phases run, metrics and artifacts land, an interrupted run resumes to the same weights, CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
import yaml

from seiscore.cli import train_ssb as cli
from seiscore.execution.fit import FitEvent, FitStart, read_events
from seiscore.methods.ssb import DataConfig, SSBModelConfig, StageConfig, TrainConfig, load_model, read_card, train
from seiscore.methods.ssb.data import heldout_set, training_pairs

torch.set_num_threads(1)  # shared 2-core CI machine: avoid OpenMP oversubscription


def tiny_train_config(out, **update) -> TrainConfig:
    data = DataConfig(
        noise_levels=((0.2, 0.02), (0.5, 0.04)),
        survey_shape=(4, 32, 40),
        train_surveys_per_level=1,
        crops_per_survey=16,
        heldout_shape=(4, 32, 40),
        heldout_sections_per_level=1,
    )
    base = dict(
        model=SSBModelConfig(patch=16),
        data=data,
        expert_stage=StageConfig(epochs=2, lr=3e-3, batch_size=8),
        router_stage=StageConfig(epochs=1, batch_size=8),
        joint_stage=StageConfig(epochs=1, lr=1e-3, batch_size=8),
        variants=("direct",),
        train_base=False,
        output_dir=out,
        epoch_eval_sections=2,
    )
    return TrainConfig(**{**base, **update})


def test_data_levels_heldout_and_hash_are_fixed():
    cfg = tiny_train_config("unused").data
    a, b = training_pairs(cfg, 16), training_pairs(cfg, 16)
    assert a.noisy.shape == (32, 1, 16, 16) and np.array_equal(a.noisy, b.noisy)
    h = heldout_set(cfg)
    assert h.noisy.shape == (2, 32, 40) and h.levels == [(0.2, 0.02), (0.5, 0.04)]
    # the held-out sections are sections of the held-out cubes (to score 3-D denoisers on the same data)
    assert np.array_equal(h.noisy[1], h.cubes[1][0][h.indices[0]])
    # crops are normalised by the noisy section's statistics: roughly zero mean, unit scale
    assert abs(a.noisy.mean()) < 0.3 and 0.5 < a.noisy.std() < 1.5
    with pytest.raises(ValueError, match="smaller than one"):
        training_pairs(cfg, 48)


def test_user_pairs_add_crops_and_bad_files_are_named(tmp_path):
    rng = np.random.default_rng(0)
    clean = rng.standard_normal((3, 20, 24)).astype(np.float32)
    np.savez(tmp_path / "pairs.npz", noisy=clean + 0.1, clean=clean)
    cfg = tiny_train_config("unused").data
    with_user = training_pairs(cfg.model_copy(update={"user_pairs": tmp_path / "pairs.npz"}), 16)
    assert with_user.noisy.shape[0] == training_pairs(cfg, 16).noisy.shape[0] + cfg.crops_per_survey
    np.savez(tmp_path / "bad.npz", noisy=clean)
    with pytest.raises(ValueError, match=r"lacks array\(s\) \['clean'\]"):
        training_pairs(cfg.model_copy(update={"user_pairs": tmp_path / "bad.npz"}), 16)


def test_train_writes_metrics_artifacts_and_improves_heldout(tmp_path):
    events = []
    result = train(tiny_train_config(tmp_path / "run"), callback=events.append)
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(m["phase"], m["epoch"]) for m in lines] == [
        ("direct/swin", 0),
        ("direct/swin", 1),
        ("direct/dino", 0),
        ("direct/dino", 1),
        ("direct/router", 0),
        ("direct/joint", 0),
    ]
    assert "heldout_gate_dino_share" in lines[-1] and 0 <= lines[-1]["heldout_gate_dino_share"] <= 1
    assert set(result.artifacts) == {"direct_router_only", "direct_joint"}
    card = read_card(result.artifacts["direct_joint"])
    assert card["training"]["data"]["hash"] == result.dataset_hash and len(result.dataset_hash) == 64
    assert set(card["heldout_metrics"]) == {"swin", "dino", "blend"} and "gate_dino_share" in card["gate_statistics"]
    assert card["parameters"]["trainable"] < card["parameters"]["total"]
    kinds = {e.event for e in events}
    assert {"start", "step", "epoch", "checkpoint", "artifact", "done"} <= kinds
    assert all(isinstance(e, FitEvent) for e in events)
    # the run folder records the same typed events
    assert [e.model_dump() for e in read_events(tmp_path / "run")] == [e.model_dump() for e in events]
    # the swin expert's first-epoch loss is above its last
    swin = [m["train_loss"] for m in lines if m["phase"] == "direct/swin"]
    assert swin[-1] < swin[0]
    heldout = heldout_set(tiny_train_config("x").data)
    from seiscore.methods.ssb.evaluation import summary

    noisy_psnr = summary(heldout.clean, heldout.noisy)["psnr"]
    assert card["heldout_metrics"]["blend"]["psnr"] > noisy_psnr + 3


class Interrupt(Exception):
    pass


def test_interrupted_training_resumes_to_identical_weights(tmp_path):
    cfg_a = tiny_train_config(tmp_path / "a", router_stage=StageConfig(epochs=0), joint_stage=StageConfig(epochs=0))
    cfg_b = cfg_a.model_copy(update={"output_dir": tmp_path / "b"})
    train(cfg_a)

    def stop_after_first_dino_epoch(event):
        if event.event == "epoch" and event.phase == "direct/dino" and event.epoch == 0:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(cfg_b, callback=stop_after_first_dino_epoch)
    assert not (tmp_path / "b" / "artifacts" / "direct_router_only").exists()
    resumed = []
    train(cfg_b, callback=resumed.append)
    starts = {e.phase: e.start_epoch for e in resumed if isinstance(e, FitStart)}
    assert starts == {"direct/swin": 2, "direct/dino": 1, "direct/router": 0, "direct/joint": 0}
    a = load_model(tmp_path / "a" / "artifacts" / "direct_router_only").state_dict()
    b = load_model(tmp_path / "b" / "artifacts" / "direct_router_only").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="another configuration"):
        train(cfg_b.model_copy(update={"expert_stage": StageConfig(epochs=3, lr=3e-3, batch_size=8)}))


def test_cli_trains_from_yaml(tmp_path, capsys):
    cfg = tiny_train_config(
        tmp_path / "cli", expert_stage=StageConfig(epochs=1, batch_size=8), joint_stage=StageConfig(epochs=0)
    )
    path = tmp_path / "ssb.yaml"
    path.write_text(yaml.safe_dump(json.loads(cfg.model_dump_json())))
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["train-ssb", str(path)])
    assert args.func(args) == 0
    assert (tmp_path / "cli" / "artifacts" / "direct_joint" / "model.safetensors").is_file()
    assert "artifacts in" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {patch: 16}\nunknown_field: 3\n")
    with pytest.raises(ValueError, match="unknown_field"):
        args.func(parser.parse_args(["train-ssb", str(bad)]))


def test_example_config_is_valid():
    cfg = TrainConfig.from_yaml("configs/ssb_small.yaml")
    assert len(cfg.data.noise_levels) == 12 and cfg.model.dino.lora.r == 16
