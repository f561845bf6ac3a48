"""Serving fidelity: measured configurations (ML.ENERGY v3) run through the twin (issue 14)."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from twin import catalog
from twin.catalog.serving_accuracy import ACCURACY_CSV, COLUMNS, serving_accuracy
from twin.cli import app
from twin.errors import TraceFormatError
from twin.validation.serving import predict
from twin.validation.serving_data import BUILTIN_DATASET, mean_context_tokens, read_serving_dataset
from twin.validation.serving_fit import (
    FIT_PARAMETERS,
    at_bounds,
    fit_accelerator,
    slower_than_on_a_weaker_gpu,
    split_models,
    stalled,
)
from twin.validation.serving_report import accuracy_line, accuracy_table, summary, with_errors
from twin.validation.setups import node, run

DATA = read_serving_dataset()
TEXT = DATA[DATA["text"]]


@pytest.fixture(scope="module")
def errors() -> pd.DataFrame:
    return with_errors(predict(TEXT))


def test_shipped_dataset_is_whole():
    # 838 configurations, 565 of them on the three text tasks; J/token is power over tokens/s.
    assert len(DATA) == 838 and len(TEXT) == 565
    j = DATA["avg_power_watts"] / DATA["output_throughput_tokens_per_sec"]
    np.testing.assert_allclose(DATA["energy_per_token_joules"], j, rtol=1e-6)
    assert TEXT["output_sq_mean"].notna().all()  # every text row has its output-length histogram
    assert (TEXT["output_sq_mean"] >= TEXT["avg_output_len"] ** 2 * 0.9).all()  # E[o^2] >= E[o]^2 (binned)


def test_mean_context_weighs_long_outputs_by_their_steps():
    # Outputs 100 and 300 tokens, equally many: E[o] = 200, E[o^2] = 50 000; a running sequence
    # sees on average prompt + E[o^2] / (2 E[o]) = prompt + 125 (not prompt + 100).
    assert mean_context_tokens(np.array([250.0]), np.array([200.0]), np.array([50000.0]))[0] == 375.0


def test_split_is_by_rule_and_disjoint():
    fit, held = split_models(TEXT["model_id"])
    assert not set(fit) & set(held)
    assert set(fit) | set(held) == set(TEXT["model_id"])
    assert len(fit) - len(held) in (0, 1)
    assert "meta-llama/Llama-3.1-8B-Instruct" in held  # the anchor's model is not fitted on


def test_every_text_configuration_runs(errors):
    assert (errors["reason"] == "").all()
    for col in ("pred_power_w_per_gpu", "pred_tokens_per_s", "pred_itl_p50_s", "pred_j_per_token"):
        assert np.isfinite(errors[col]).all() and (errors[col] > 0).all()
    # The board never draws more than its power limit; the batch never exceeds the cap.
    tdp = errors["accelerator"].map(lambda n: catalog.accelerator_spec(n).max_power_w)
    assert (errors["pred_power_w_per_gpu"] <= tdp * (1 + 1e-9)).all()
    assert (errors["pred_batch"] <= errors["max_num_seqs"] * (1 + 1e-9)).all()


def test_held_out_errors_do_not_regress(errors):
    # The held-out H100 rows meet the targets (power <= 10 %, J/token <= 15 %, tokens/s
    # <= 15 %, ITL p50 <= 20 %); the B200 rows miss them and are guarded against regressing (the
    # misses are named in docs/serving-accuracy.md).
    s = summary(errors).set_index(["half", "gpu"])
    h100 = s.loc[("held-out", "H100")]
    assert h100["power"] <= 10.0 and h100["J/token"] <= 15.0 and h100["tokens/s"] <= 15.0 and h100["ITL p50"] <= 20.0
    both = s.loc[("held-out", "H100+B200")]
    assert both["power"] < 17.0 and both["J/token"] < 26.0 and both["tokens/s"] < 38.0 and both["ITL p50"] < 23.0


def test_accuracy_line_format(errors):
    line = accuracy_line(errors)
    pattern = (
        r"serving accuracy: (\d+) of (\d+) configurations; MAPE power \d+\.\d %, J/token \d+\.\d %, "
        r"tokens/s \d+\.\d %, ITL p50 \d+\.\d %"
    )
    m = re.fullmatch(pattern, line)
    assert m, line
    assert int(m.group(1)) == int(m.group(2)) == (errors["half"] == "held-out").sum()
    # No held-out configuration: nothing to average, so no number.
    none = accuracy_line(errors[errors["half"] == "fit"])
    assert none == "serving accuracy: 0 of 0 configurations; MAPE power n/a, J/token n/a, tokens/s n/a, ITL p50 n/a"


def test_the_shipped_accuracy_table_is_what_the_shipped_dataset_gives(errors):
    # Every serving run states these figures (twin.catalog.serving_accuracy): they must be the
    # validation's own, per accelerator, over the held-out models (regenerate with
    # `twin validate-serving --accuracy-table twin/catalog/serving_accuracy.csv`).
    shipped = pd.read_csv(ACCURACY_CSV)
    computed = accuracy_table(errors)
    pd.testing.assert_frame_equal(shipped, computed, check_dtype=False)
    assert list(shipped["accelerator"]) == ["B200", "H100-SXM"]
    # By hand for H100: the mean absolute power error of its held-out rows that ran.
    held = errors[(errors["half"] == "held-out") & (errors["reason"] == "") & (errors["accelerator"] == "H100-SXM")]
    h100 = serving_accuracy("H100-SXM")
    assert h100 is not None and h100.configurations == len(held)
    assert h100.power_pct == round(100.0 * float(held["err_power"].abs().mean()), 1)
    # The run's statement and the validation's summary agree.
    s = summary(errors).set_index(["half", "gpu"]).loc[("held-out", "H100")]
    assert h100.j_per_token_pct == pytest.approx(s["J/token"], abs=0.05)
    assert h100.tokens_per_s_pct == pytest.approx(s["tokens/s"], abs=0.05)
    assert serving_accuracy("MI300X") is None


def test_the_engine_serves_a_configuration_as_the_validation_does():
    # Llama-3.1-8B on one H100 at max_num_seqs 64 (lm-arena-chat): the same replica as a scenario,
    # every request queued at once, run by the engine for a minute. Its steady state is the
    # validation's prediction: the same serving model, governor and power model.
    row = TEXT[(TEXT["model_id"] == "meta-llama/Llama-3.1-8B-Instruct") & (TEXT["gpu_model"] == "H100")]
    row = row[row["max_num_seqs"] == 64]
    pred = predict(row).iloc[0]
    ctx = mean_context_tokens(row["prompt_tokens"].to_numpy(), row["avg_output_len"].to_numpy(),
                              row["output_sq_mean"].to_numpy())[0]  # fmt: skip
    wl = {
        "name": "bench",
        "kind": "inference",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "max_batch": 64,
        "arrivals": {
            "kind": "constant",
            "requests_per_s": 1e4,
            "prompt_tokens": 250.0,
            "output_tokens": 2 * (ctx - 250.0),
        },
    }
    over = node("H100-SXM", 1, [wl], duration_s=60.0)
    k = run(over).kpis
    tokens_s = k["tokens_generated"] / 60.0
    gpu_w = k["energy_accelerators_j"] / 60.0
    # The scenario's output length sets the context (prompt + output/2); the token mix differs
    # from the row's (prompt per output token), so allow a few per cent.
    assert tokens_s == pytest.approx(pred["pred_tokens_per_s"], rel=0.05)
    assert gpu_w == pytest.approx(pred["pred_power_w_per_gpu"], rel=0.03)


def test_block_scaled_fp8_experts_are_powered_as_measured(errors):
    # The fit half's block-FP8 models on H100 (Qwen3-235B-A22B FP8 on 4 and 8 GPUs) read 11-21 %
    # low at batch 8-16 (13 % over all their batches) before their expert kernels' SM
    # activity was modelled; now at most 14 % (batch 8 on 8 GPUs), 5 % over all.
    fp8 = errors[errors["model_id"].str.endswith("-2507-FP8") & (errors["gpu_model"] == "H100")]
    assert len(fp8) >= 20
    low_batch = fp8[fp8["max_num_seqs"] <= 16]
    assert (low_batch["err_power"].abs() < 0.14).all()
    assert fp8["err_power"].abs().mean() < 0.07


def test_stalled_runs_are_flagged():
    s = stalled(TEXT)
    worst = TEXT.loc[s, "model_id"].unique()
    assert set(worst) == {"Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8", "Qwen/Qwen3-235B-A22B-Instruct-2507"}


def test_fit_recovers_the_parameters_that_made_the_data():
    # Synthetic measurements made by the twin itself with known parameters, on a few H100
    # configurations of three models: the fit must find those parameters again (within the
    # spread its loss leaves on exact data).
    base = catalog.accelerator_spec("H100-SXM")
    truth = base.with_overrides(achieved_bandwidth_fraction=0.7, achieved_flop_fraction=0.45, step_overhead_s=0.002,
                                static_power_fraction=0.315, uncore_power_fraction=0.135,  # 0.3 of 0.45
                                mem_power_fraction=0.2, full_power_w=900.0)  # fmt: skip
    models = ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-32B", "Qwen/Qwen3-30B-A3B-Instruct-2507"]
    sub = TEXT[TEXT["model_id"].isin(models) & (TEXT["gpu_model"] == "H100")].copy()
    made = predict(sub, {"H100-SXM": truth})
    sub["power_w_per_gpu"] = made["pred_power_w_per_gpu"]
    sub["output_throughput_tokens_per_sec"] = made["pred_tokens_per_s"]
    sub["itl_p50_s"] = made["pred_itl_p50_s"]
    fit = fit_accelerator(sub, base)
    assert set(fit.values) == set(FIT_PARAMETERS)
    for key in ("achieved_bandwidth_fraction", "static_power_fraction", "uncore_power_fraction", "full_power_w"):
        assert fit.values[key] == pytest.approx(getattr(truth, key), rel=0.05), key
    assert max(fit.rms_log_error.values()) < 0.01


def test_cli_validate_serving_writes_its_report(tmp_path):
    models = ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-14B", "google/gemma-3-12b-it"]
    raw = pd.read_csv(BUILTIN_DATASET / "llm_configs.csv")
    (tmp_path / "ds").mkdir()
    raw[raw["model_id"].isin(models)].to_csv(tmp_path / "ds" / "llm_configs.csv", index=False)
    out = tmp_path / "report" / "serving.md"
    acc = tmp_path / "report" / "accuracy.csv"
    res = CliRunner().invoke(
        app, ["validate-serving", str(tmp_path / "ds"), "--out", str(out), "--accuracy-table", str(acc)]
    )
    assert res.exit_code == 0, res.output
    # Two of the three models are held out (Llama-3.1-8B, gemma-3-12b): their H100 and B200 rows.
    written = pd.read_csv(acc)
    assert list(written.columns) == list(COLUMNS) and list(written["accelerator"]) == ["B200", "H100-SXM"]
    subset = with_errors(predict(read_serving_dataset(tmp_path / "ds")))
    pd.testing.assert_frame_equal(written, accuracy_table(subset), check_dtype=False)
    bad = CliRunner().invoke(app, ["validate-serving", str(tmp_path / "ds"), "--accuracy-table", str(out)])
    assert bad.exit_code == 2 and "expected a .csv file" in bad.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("serving accuracy: ") and "configurations; MAPE power" in last
    text = out.read_text()
    assert "Held-out half" in text and "serving-parity.png" in text
    # The catalog's fitted boards each sit on some bound of the fit: the report names them.
    assert "## Fitted parameters on a bound of the fit" in text and "* H100-SXM: " in text
    assert (tmp_path / "report" / "serving-parity.png").stat().st_size > 10_000
    table = pd.read_csv(out.with_suffix(".csv"))
    assert len(table) == raw["model_id"].isin(models).sum()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.drop(columns=["median_itl_ms"]), "missing column"),
        (lambda d: d.assign(num_gpus=d["num_gpus"].astype(object).where(d.index != 3, "two")), "line 5"),
        (lambda d: d.assign(avg_power_watts=d["avg_power_watts"].where(d.index != 0, -5.0)), "avg_power_watts"),
        (lambda d: d.iloc[0:0], "no configurations"),
        # 1e300 sequences overflowed the step's FLOPs and crashed; counts are 32-bit integers.
        (
            lambda d: d.assign(max_num_seqs=d["max_num_seqs"].astype(float).where(d.index != 1, 1e300)),
            r"line 3, field 'max_num_seqs'",
        ),
    ],
)
def test_bad_datasets_are_named(tmp_path, mutate, message):
    raw = pd.read_csv(BUILTIN_DATASET / "llm_configs.csv").head(20)
    path = tmp_path / "llm_configs.csv"
    mutate(raw).to_csv(path, index=False)
    with pytest.raises(TraceFormatError, match=message):
        read_serving_dataset(path)
    res = CliRunner().invoke(app, ["validate-serving", str(path)])
    assert res.exit_code == 2


@settings(max_examples=60, deadline=None)
@given(cells=st.lists(st.one_of(st.text(max_size=6), st.floats(allow_nan=True), st.integers(-3, 10)), min_size=1,
                      max_size=8))  # fmt: skip
def test_fuzzed_rows_are_read_or_refused_by_name(tmp_path_factory, cells):
    raw = pd.read_csv(BUILTIN_DATASET / "llm_configs.csv").head(3).astype(object)
    cols = [c for c in raw.columns if c not in ("model_id", "task", "gpu_model")]
    for i, value in enumerate(cells):
        raw.loc[i % 3, cols[i % len(cols)]] = value
    path = tmp_path_factory.mktemp("fuzz") / "llm_configs.csv"
    raw.to_csv(path, index=False)
    try:
        out = read_serving_dataset(path)
    except TraceFormatError as exc:
        message = str(exc)
    else:
        assert len(out) == 3 and np.isfinite(out["power_w_per_gpu"]).all()
        return
    assert "llm_configs.csv" in message


def test_cli_calibrate_takes_a_serving_dataset_and_a_harness_file_apart(tmp_path):
    # `twin calibrate` dispatches: a serving dataset is fitted per GPU (twin.validation), a file
    # that is neither a dataset nor harness output is a named error from the harness reader.
    models = ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-14B"]
    raw = pd.read_csv(BUILTIN_DATASET / "llm_configs.csv")
    raw = raw[raw["model_id"].isin(models) & raw["gpu_model"].str.contains("H100")]
    (tmp_path / "ds").mkdir()
    raw.to_csv(tmp_path / "ds" / "llm_configs.csv", index=False)
    res = CliRunner().invoke(app, ["calibrate", str(tmp_path / "ds"), "--out", str(tmp_path / "fit")])
    assert res.exit_code == 0, res.output
    assert "H100-SXM: " in res.output and (tmp_path / "fit" / "H100-SXM.yaml").exists()
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    res = CliRunner().invoke(app, ["calibrate", str(other)])
    assert res.exit_code == 2 and "error:" in res.output


def test_parameters_on_a_bound_of_the_fit_are_named():
    # Inside every bound: nothing named. Then one at each end, by its name, value and bound.
    h100 = catalog.accelerator_spec("H100-SXM")
    inside = h100.with_overrides(
        achieved_bandwidth_fraction=0.8, roofline_exponent=2.0, expert_routing_skew=1.0,
        mem_power_fraction=2.0 * 3.9e-12 * 8 * h100.hbm_bandwidth_b_s / (h100.full_power_w - h100.idle_power_w),
    )  # fmt: skip
    assert at_bounds(inside) == []
    named = at_bounds(inside.with_overrides(achieved_flop_fraction=0.1, full_power_w=1.5 * h100.max_power_w))
    assert named == [
        "achieved_flop_fraction = 0.1 (lower bound 0.1)",
        "full_power_w over TDP = 1.5 (upper bound 1.5)",
    ]


def test_slower_than_on_a_weaker_gpu_pairs_only_the_same_configuration():
    # A100 -> H100: more HBM bandwidth, FLOP/s and link bandwidth, so the A100 is no better on paper.
    # The H100 run at 20 ms is slower than the A100's 15 ms: flagged. A different batch cap or task
    # is another configuration, and an A100 run is never judged against a better GPU.
    base = {"model_id": "m", "task": "t", "num_gpus": 1, "tensor_parallel": 1, "data_parallel": 1, "expert_parallel": 1}
    runs = pd.DataFrame(
        [
            {**base, "max_num_seqs": 8, "accelerator": "H100-SXM", "itl_p50_s": 0.020},
            {**base, "max_num_seqs": 8, "accelerator": "A100-SXM4-80GB", "itl_p50_s": 0.015},
            {**base, "max_num_seqs": 16, "accelerator": "H100-SXM", "itl_p50_s": 0.020},
            {**base, "max_num_seqs": 16, "accelerator": "A100-SXM4-80GB", "itl_p50_s": 0.025},
            {**base, "max_num_seqs": 32, "accelerator": "H100-SXM", "itl_p50_s": 0.050},
            {**base, "task": "u", "max_num_seqs": 32, "accelerator": "A100-SXM4-80GB", "itl_p50_s": 0.010},
        ]
    )
    assert slower_than_on_a_weaker_gpu(runs).tolist() == [True, False, False, False, False, False]


def test_b200_runs_slower_than_on_h100_are_named(errors):
    # The shipped data hold B200 runs slower per step than the same configuration on the H100, which
    # has 0.42x its bandwidth: single-GPU reasoning runs among them. They are counted, not dropped.
    slow = errors[errors["slower_than_weaker_gpu"]]
    assert set(slow["gpu_model"]) == {"B200"}
    assert ((slow["task"] == "gpqa") & (slow["num_gpus"] == 1)).sum() >= 10
    held = errors[(errors["half"] == "held-out") & (errors["reason"] == "")]
    assert held["slower_than_weaker_gpu"].any()
