"""Energy meters (fake NVML injected, fake RAPL sysfs, the labelled model) and the sampler."""

from __future__ import annotations

import math
import time

import pytest
from harness_fakes import FakeClock, FakeNvml, make_rapl_tree

from twin.harness import HarnessError
from twin.harness.cpu import (
    CpuPowerModel,
    CpuUtilization,
    ModelMeter,
    RaplMeter,
    find_rapl_zones,
    rapl_delta_uj,
)
from twin.harness.io import HARNESS_COLUMNS, LiveCsvWriter, read_harness
from twin.harness.meter import MeterReading
from twin.harness.nvml import NvmlMeter, nvml_index_of_cuda_device
from twin.harness.run import auto_meter
from twin.harness.sampler import Sampler, WorkCounter

# ----------------------------------------------------------------------------- NVML


def test_nvml_units_converted_and_energy_rebased():
    fake = FakeNvml(power_mw=123_456, energy0_mj=1_000_000)
    meter = NvmlMeter(index=0, nvml=fake, clock=FakeClock())
    fake.energy_mj = 1_012_345  # 12 345 mJ after the meter started
    r = meter.read()
    assert r.power_w == pytest.approx(123.456)  # mW -> W
    assert r.energy_j == pytest.approx(12.345)  # mJ -> J, rebased to the first read
    assert r.utilization == pytest.approx(0.87)  # percent -> fraction
    assert r.memory_utilization == pytest.approx(0.42)
    assert r.temperature_c == 61.0
    assert r.sm_clock_hz == pytest.approx(1.98e9)  # MHz -> Hz
    assert r.mem_clock_hz == pytest.approx(2.619e9)
    assert r.power_limit_w == pytest.approx(700.0)
    assert meter.energy_source == "nvml"
    assert meter.device_name == "Fake H100 80GB HBM3"  # bytes decoded


def test_nvml_without_energy_counter_integrates_power():
    clock = FakeClock()
    fake = FakeNvml(power_mw=200_000, energy_counter=False)
    meter = NvmlMeter(nvml=fake, clock=clock)
    assert meter.read().energy_j == 0.0
    clock.advance(0.5)
    fake.power_mw = 300_000
    # Trapezoid: (200 + 300) / 2 W x 0.5 s = 125 J.
    assert meter.read().energy_j == pytest.approx(125.0)
    assert "integrated" in meter.note


def test_nvml_power_limit_not_permitted_is_reported_not_raised():
    meter = NvmlMeter(nvml=FakeNvml(allow_set_limit=False))
    status = meter.set_power_limit(400.0)
    assert status.startswith("not permitted")
    assert "root" in status


def test_nvml_power_limit_set_in_mw_and_restored_on_close():
    fake = FakeNvml(allow_set_limit=True)
    meter = NvmlMeter(nvml=fake)
    assert meter.set_power_limit(450.0) == "set"
    assert fake.set_calls == [450_000]  # W -> mW
    assert meter.read().power_limit_w == pytest.approx(450.0)
    meter.close()
    assert fake.set_calls[-1] == 700_000  # the limit found at start
    assert not fake.initialised
    with pytest.raises(HarnessError, match="200-700 W"):
        NvmlMeter(nvml=FakeNvml(allow_set_limit=True)).set_power_limit(900.0)


def test_nvml_init_failure_is_a_harness_error():
    class Broken(FakeNvml):
        def nvmlInit(self):
            raise self.NVMLError()

    with pytest.raises(HarnessError, match="NVML unavailable"):
        NvmlMeter(nvml=Broken())


def test_nvml_index_follows_cuda_visible_devices():
    assert nvml_index_of_cuda_device(1, {"CUDA_VISIBLE_DEVICES": "2,3"}) == 3
    assert nvml_index_of_cuda_device(1, {"CUDA_VISIBLE_DEVICES": "GPU-abc,GPU-def"}) == "GPU-def"
    assert nvml_index_of_cuda_device(0, {"CUDA_VISIBLE_DEVICES": "MIG-abc"}) == 0
    fake = FakeNvml()
    NvmlMeter("GPU-def", nvml=fake)  # a UUID is looked up by UUID, not taken as an index
    assert fake.handles == ["GPU-def"]


@pytest.mark.parametrize("value_type", [0, 1, 5])  # double, unsigned int, signed int (driver-dependent)
def test_nvml_prefers_the_instantaneous_power_field(value_type):
    # nvmlDeviceGetPowerUsage is a 1 s average on Ampere and newer; the instant field is not.
    fake = FakeNvml(power_mw=300_000, instant_power_mw=412_500, instant_value_type=value_type)
    meter = NvmlMeter(nvml=fake, clock=FakeClock())
    assert meter.read().power_w == pytest.approx(412.5)  # mW -> W
    assert "INSTANT" in meter.describe()["power_reading"]
    fake.instant_power_mw = None  # the field stops answering: fall back to the average
    assert meter.read().power_w == pytest.approx(300.0)


def test_nvml_without_the_instant_field_uses_power_usage():
    class OldBinding(FakeNvml):
        nvmlDeviceGetFieldValues = None  # an nvidia-ml-py without the field API

    for fake in (FakeNvml(power_mw=250_000), OldBinding(power_mw=250_000)):
        meter = NvmlMeter(nvml=fake, clock=FakeClock())
        assert meter.read().power_w == pytest.approx(250.0)
        assert "nvmlDeviceGetPowerUsage" in meter.describe()["power_reading"]


def test_nvml_power_limit_that_cannot_be_restored_says_how():
    fake = FakeNvml(allow_set_limit=True, restore_fails=True)
    meter = NvmlMeter(index=2, nvml=fake)
    assert meter.set_power_limit(450.0) == "set"
    with pytest.raises(HarnessError, match=r"restore it with: sudo nvidia-smi -i 2 -pl 700"):
        meter.restore_power_limit()


# ----------------------------------------------------------------------------- RAPL


def test_rapl_delta_handles_wraparound():
    assert rapl_delta_uj(100.0, 250.0, 1000.0) == 150.0
    assert rapl_delta_uj(900.0, 50.0, 1000.0) == 150.0


def test_rapl_zones_and_wraparound_on_fake_sysfs(tmp_path):
    root = make_rapl_tree(
        tmp_path,
        {
            "intel-rapl:0": ("package-0", 999_000, 1_000_000),
            "intel-rapl:0:0": ("core", 5, 1_000_000),  # inside the package: not added
            "intel-rapl:0:1": ("dram", 10, 1_000_000),
            "intel-rapl:1": ("psys", 7, 1_000_000),  # overlaps the packages: skipped
            "intel-rapl-mmio:0": ("package-0", 1, 1_000_000),  # another interface: skipped
        },
    )
    (tmp_path / "intel-rapl:2").mkdir()
    (tmp_path / "intel-rapl:2" / "energy_uj").mkdir()  # unreadable counter: skipped
    zones = find_rapl_zones(root)
    assert [z.name for z in zones] == ["package-0", "dram"]

    clock = FakeClock()
    util = CpuUtilization(clock=clock, cpu_time=FakeClock(0.0), n_cpus=2)
    meter = RaplMeter(root=root, utilization=util)
    (root / "intel-rapl:0" / "energy_uj").write_text("1000\n")  # wrapped past 1e6
    (root / "intel-rapl:0:1" / "energy_uj").write_text("510\n")
    clock.advance(0.5)
    r = meter.read()
    # package: 1e6 - 999 000 + 1 000 = 2 000 uJ; dram: 500 uJ.
    assert r.energy_j == pytest.approx(2.5e-3)
    assert r.power_w == pytest.approx(2.5e-3 / 0.5)
    assert meter.energy_source == "rapl"


def test_auto_meter_prefers_rapl_then_model(tmp_path):
    root = make_rapl_tree(tmp_path / "pc", {"intel-rapl:0": ("package-0", 1, 100)})
    assert auto_meter("cpu", powercap_root=root).energy_source == "rapl"
    assert auto_meter("cpu", powercap_root=tmp_path / "absent").energy_source == "estimated"


# ----------------------------------------------------------------------------- model


def test_model_meter_is_labelled_estimated_and_integrates_the_model():
    clock, cpu = FakeClock(), FakeClock(0.0)
    util = CpuUtilization(clock=clock, cpu_time=cpu, n_cpus=2)
    meter = ModelMeter(CpuPowerModel(10.0, 50.0, "test numbers"), utilization=util)
    clock.advance(1.0)
    cpu.advance(1.0)  # 1 CPU-second in 1 s on 2 CPUs: u = 0.5
    r = meter.read()
    assert r.utilization == pytest.approx(0.5)
    assert r.power_w == pytest.approx(30.0)  # 10 + 40 x 0.5
    assert r.energy_j == pytest.approx(30.0)
    assert meter.energy_source == "estimated"
    assert "ESTIMATED, NOT MEASURED" in meter.note
    assert "test numbers" in meter.note
    assert meter.describe()["energy_model"]["max_power_w"] == 50.0
    assert meter.set_power_limit(100.0).startswith("not supported")


def test_default_cpu_model_cites_its_source():
    model = CpuPowerModel.default(n_cpus=8)
    assert model.max_power_w == 32.0  # 4 W x 8 threads
    assert model.idle_power_w == pytest.approx(9.6)
    assert "CodeCarbon" in model.source
    assert "[EST]" in model.source


# ----------------------------------------------------------------------------- sampler


def test_work_counter_takes_tokens_and_dominant_phase():
    clock = FakeClock()
    counter = WorkCounter(clock=clock)
    clock.advance(0.2)
    counter.set_phase("prefill")
    counter.add_tokens(4)
    clock.advance(0.1)
    counter.set_phase("decode")
    counter.add_tokens(4)
    clock.advance(0.05)
    assert counter.take() == (8, "idle")  # idle 0.2 s > prefill 0.1 s > decode 0.05 s
    clock.advance(0.1)
    assert counter.take() == (0, "decode")
    assert counter.total_tokens == 8
    with pytest.raises(ValueError, match="unknown phase"):
        counter.set_phase("train")


class _StepMeter:
    """A meter whose energy grows 1 J per read, at 100 W."""

    energy_source = "nvml"
    device_name = "step"
    note = ""

    def __init__(self) -> None:
        self.n = 0

    def read(self) -> MeterReading:
        self.n += 1
        return MeterReading(time_s=time.monotonic(), power_w=100.0, energy_j=5.0 + self.n)


def test_sampler_writes_schema_rows_at_a_fixed_rate(tmp_path):
    counter = WorkCounter()
    writer = LiveCsvWriter(tmp_path / "s.csv")
    sampler = Sampler(_StepMeter(), counter, writer, sample_hz=50.0, gpu_index=3)
    sampler.start()
    for _ in range(10):
        counter.add_tokens(2)
        time.sleep(0.02)
    sampler.stop()
    writer.close()
    frame, summary = read_harness(tmp_path / "s.csv")
    assert summary == {}
    assert tuple(frame.columns) == HARNESS_COLUMNS
    assert frame["tokens"].sum() == 20  # the final sample collects the rest
    assert frame["time_s"].iloc[0] == 0.0
    assert frame["energy_j"].iloc[0] == 0.0  # rebased to the first sample
    assert (frame["energy_j"].diff().dropna() == 1.0).all()
    assert (frame["gpu_index"] == 3).all()
    assert frame["time_s"].is_monotonic_increasing
    # 50 Hz for about 0.2 s: roughly ten rows (loose bounds: CI machines stall).
    assert 4 <= len(frame) <= 30
    assert math.isnan(frame["utilization"].iloc[0])


def test_sampler_reraises_meter_failure(tmp_path):
    class Failing(_StepMeter):
        def read(self) -> MeterReading:
            if self.n >= 1:
                raise RuntimeError("meter broke")
            return super().read()

    writer = LiveCsvWriter(tmp_path / "f.csv")
    sampler = Sampler(Failing(), WorkCounter(), writer, sample_hz=100.0)
    sampler.start()
    time.sleep(0.05)
    with pytest.raises(RuntimeError, match="meter broke"):
        sampler.stop()
    writer.close()


def test_zeus_windows_never_stop_a_run():
    from twin.harness.nvml import ZeusWindows

    off = ZeusWindows(None)
    off.begin("load")
    off.end("load")
    assert off.result is None
    assert off.problems == []
    # On a machine without a GPU (or without Zeus) the windows report why and do nothing.
    probe = ZeusWindows(0)
    probe.begin("load")
    probe.end("load")
    assert probe.result is None or set(probe.result) == {"load"}
    if probe.result is None:
        assert probe.problems
