"""The code paths a GPU takes, run on the CPU: the real train and validation steps under float16 autocast with a
GradScaler, under bfloat16 autocast, and with the network (and Dice loss) compiled by torch.compile (aot_eager;
inductor where a C compiler exists) without graph breaks; the same for the network built for inference. Also: the
steps leave losses and counts on the device (no host read per step), fused SGD (chosen on CUDA) updates exactly as
the unfused one, and the final validation predicts with the compiled network."""
from __future__ import annotations

import contextlib
import shutil
import warnings
from collections import Counter
from unittest import mock

import numpy as np
import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from nnunet.models import load_model_folder
from nnunet.inference.predictor import nnUNetPredictor
from nnunet.networks.from_plans import unwrap
from nnunet.registry import TRAINERS
from nnunet.training import optimizers, trainer_loop
from nnunet.training.optimizers import build_optimizer, load_optimizer_state, sgd_implementation
from nnunet.training.run import get_trainer_from_args
from nnunet.training.trainer_loop import make_grad_scaler, outputs_to_host
from nnunet.training.validation import weights_fingerprint
from tests.training.helpers import TinyTestTrainer, make_3d_dataset

torch.set_num_threads(1)
HAS_C_COMPILER = shutil.which("cc") is not None or shutil.which("gcc") is not None
BACKENDS = ["aot_eager", pytest.param("inductor", marks=[
    pytest.mark.slow, pytest.mark.skipif(not HAS_C_COMPILER, reason="inductor needs a C compiler (cc/gcc)")])]
#: Tensor methods that read a value on the host: on CUDA each waits for the queued kernels
HOST_READS = ("item", "cpu", "numpy", "tolist", "__float__", "__int__", "__bool__", "__index__")


class Float16CpuTrainer(TinyTestTrainer):
    mixed_precision = "float16"


class Float16FusedCpuTrainer(TinyTestTrainer):
    mixed_precision = "float16"
    optimizer_kwargs = {"fused": True}


class Bfloat16CpuTrainer(TinyTestTrainer):
    mixed_precision = "bfloat16"


class _CompilingOnCpu(TinyTestTrainer):
    """Compiles as on CUDA (nnUNet_compile's rule keeps the CPU eager), fullgraph so a graph break fails."""

    def _do_i_compile(self) -> bool:
        return True


class CompileAotEagerTrainer(_CompilingOnCpu):
    compile_options = {"backend": "aot_eager", "fullgraph": True}


class CompileInductorTrainer(_CompilingOnCpu):
    compile_options = {"backend": "inductor", "fullgraph": True}


COMPILING = {"aot_eager": "CompileAotEagerTrainer", "inductor": "CompileInductorTrainer"}


@pytest.fixture(autouse=True)
def _test_classes_registered(register):
    register(TRAINERS, TinyTestTrainer, Float16CpuTrainer, Float16FusedCpuTrainer, Bfloat16CpuTrainer,
             CompileAotEagerTrainer, CompileInductorTrainer)


@pytest.fixture
def dataset(dirs):
    make_3d_dataset(dirs["preprocessed"])
    return dirs


def _trainer(name: str, device: str = "cpu"):
    trainer = get_trainer_from_args(901, "3d_fullres", 0, name, device=torch.device(device))
    return trainer


def _ready(name: str):
    """An initialised trainer, its (in-process) loaders and the parameters before any step."""
    torch.manual_seed(0)
    np.random.seed(0)
    trainer = _trainer(name)
    trainer.initialize()
    train, val = trainer.get_plain_dataloaders()
    return trainer, train, val


def _params(trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in unwrap(trainer.network).parameters()]


def _changed(before, trainer) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, unwrap(trainer.network).parameters()))


def _output_dtypes(trainer) -> list[torch.dtype]:
    """A hook records the dtype each convolution computes in during the next forward."""
    seen: list[torch.dtype] = []
    conv = next(m for m in unwrap(trainer.network).modules() if isinstance(m, torch.nn.Conv3d))
    conv.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    return seen


@contextlib.contextmanager
def counting_host_reads():
    """Counts the calls of :data:`HOST_READS` on tensors (on the CPU nothing waits, but the same calls on CUDA
    would each be a synchronisation)."""
    calls: Counter = Counter()

    def counting(name, original):
        def wrapper(self, *args, **kwargs):
            calls[name] += 1
            return original(self, *args, **kwargs)
        return wrapper

    with contextlib.ExitStack() as stack:
        for name in HOST_READS:
            stack.enter_context(mock.patch.object(torch.Tensor, name, counting(name, getattr(torch.Tensor, name))))
        yield calls


# --------------------------------------------------------------------------------------------- defaults


def test_defaults_stay_those_of_nnunet(dataset):
    cpu = _trainer("TinyTestTrainer")
    assert cpu.autocast_dtype() is None and cpu.grad_scaler is None
    assert isinstance(cpu._autocast(), contextlib.nullcontext)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # without CUDA torch disables the scaler, and says so
        cuda = _trainer("TinyTestTrainer", "cuda")
    assert cuda.autocast_dtype() == torch.float16
    assert isinstance(cuda.grad_scaler, torch.amp.GradScaler)
    bf16 = _trainer("Bfloat16CpuTrainer")
    assert bf16.autocast_dtype() == torch.bfloat16 and bf16.grad_scaler is None  # bf16 needs no loss scaling
    assert make_grad_scaler(torch.device("cpu"), enabled=True)._device == "cpu"


# --------------------------------------------------------------------------------------------- autocast


@pytest.mark.parametrize("name", ["Float16CpuTrainer", "Float16FusedCpuTrainer"])
def test_float16_autocast_with_grad_scaler_trains(dataset, name):
    trainer, train, _ = _ready(name)
    scaler = trainer.grad_scaler
    assert isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()
    fused = trainer.optimizer.param_groups[0]["fused"]
    assert fused is (True if name == "Float16FusedCpuTrainer" else None)  # None: torch's default on the CPU
    dtypes = _output_dtypes(trainer)
    before, initial_scale = _params(trainer), scaler.get_scale()
    trainer.network.train()
    losses = [float(trainer.train_step(next(train))["loss"]) for _ in range(3)]
    assert dtypes and set(dtypes) == {torch.float16}  # the convolutions really ran in float16
    assert all(np.isfinite(losses))
    assert _changed(before, trainer)
    # every step updated the scaler: a clean step counts towards growth, an overflowing one halves the scale and
    # restarts the count (growth itself needs 2000 clean steps)
    halvings = round(np.log2(initial_scale / scaler.get_scale()))
    clean_since = int(scaler.state_dict()["_growth_tracker"])
    assert halvings + clean_since <= 3 and (halvings > 0 or clean_since == 3)


def test_float16_overflow_is_skipped_and_halves_the_scale(dataset):
    trainer, train, _ = _ready("Float16FusedCpuTrainer")
    trainer.network.train()
    batch = next(train)
    batch["data"] = batch["data"] * 1e6  # float16 activations overflow: the scaler must skip this step
    before, scale = _params(trainer), trainer.grad_scaler.get_scale()
    trainer.train_step(batch)
    assert trainer.grad_scaler.get_scale() == scale / 2
    assert not _changed(before, trainer)
    buffers = [trainer.optimizer.state[p]["momentum_buffer"] for p in unwrap(trainer.network).parameters()]
    assert all(torch.count_nonzero(b) == 0 for b in buffers)  # no garbage left by the skipped first step
    loss = float(trainer.train_step(next(train))["loss"])
    assert np.isfinite(loss) and _changed(before, trainer)
    assert all(torch.isfinite(p).all() for p in unwrap(trainer.network).parameters())


def test_bfloat16_autocast_trains_and_validates(dataset):
    trainer, train, val = _ready("Bfloat16CpuTrainer")
    dtypes = _output_dtypes(trainer)
    before = _params(trainer)
    trainer.network.train()
    loss = float(trainer.train_step(next(train))["loss"])
    assert set(dtypes) == {torch.bfloat16}
    assert np.isfinite(loss) and _changed(before, trainer)
    trainer.network.eval()
    with torch.no_grad():
        out = trainer.validation_step(next(val))
    assert np.isfinite(float(out["loss"])) and out["tp_hard"].shape == (2,)


# --------------------------------------------------------------------------------------------- torch.compile


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_training_has_no_graph_breaks_and_matches_eager(dataset, backend):
    counters.clear()
    compiled, train, val = _ready(COMPILING[backend])
    eager, _, _ = _ready("TinyTestTrainer")
    assert hasattr(compiled.network, "_orig_mod") and hasattr(compiled.loss.loss.dc, "_orig_mod")
    unwrap(eager.network).load_state_dict(unwrap(compiled.network).state_dict())
    batch = next(train)
    for trainer in (compiled, eager):
        trainer.network.train()
    losses = [float(t.train_step(batch)["loss"]) for t in (compiled, eager)]
    assert np.isfinite(losses[0])
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if backend == "inductor" else {"rtol": 1e-5, "atol": 1e-6}
    assert losses[0] == pytest.approx(losses[1], rel=tolerance["rtol"] * 10)
    for a, b in zip(unwrap(compiled.network).parameters(), unwrap(eager.network).parameters()):
        torch.testing.assert_close(a, b, **tolerance)
    compiled.network.eval()
    with torch.no_grad():
        out = compiled.validation_step(next(val))
    assert np.isfinite(float(out["loss"]))
    assert not counters["graph_break"], dict(counters["graph_break"])
    explained = torch._dynamo.explain(unwrap(compiled.network))(batch["data"])
    assert explained.graph_break_count == 0 and explained.graph_count == 1


# --------------------------------------------------------------------------------------------- inference network


@pytest.fixture
def inference_model(dataset):
    """The model folder of a trainer that took one step, loaded as prediction loads it."""
    trainer, train, _ = _ready("TinyTestTrainer")
    trainer.network.train()
    trainer.train_step(next(train))
    trainer.output_folder.mkdir(parents=True, exist_ok=True)
    trainer.dataset_json["numTraining"] = 5  # the tiny dataset.json leaves it 0; a model folder must say
    trainer.copy_plans_and_dataset_json()
    trainer.save_checkpoint(trainer.output_folder / "checkpoint_final.pth")
    return load_model_folder(trainer.output_folder_base, (0,))


def _case(model) -> torch.Tensor:
    return torch.randn((1, 1, *model.configuration.patch_size), generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_inference_network_under_autocast(inference_model, dtype):
    network, x = inference_model.network.eval(), _case(inference_model)
    with torch.inference_mode():
        reference = network(x)
        with torch.autocast("cpu", dtype=dtype):
            low = network(x)
    assert low.dtype == dtype and torch.isfinite(low).all()
    assert reference.shape == (1, 3, *x.shape[2:])
    scale = float(reference.abs().max())
    assert float((low.float() - reference).abs().max()) < 0.05 * scale
    agreement = (low.float().argmax(1) == reference.argmax(1)).float().mean()
    assert float(agreement) > 0.95


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_network_compiles_whole_and_predicts_like_eager(inference_model, backend):
    model = inference_model
    network, x = model.network.eval(), _case(model)
    with torch.inference_mode():
        explained = torch._dynamo.explain(network)(x)
        assert explained.graph_break_count == 0
        compiled = torch.compile(network, backend=backend, fullgraph=True)
        torch.testing.assert_close(compiled(x), network(x), rtol=1e-4, atol=1e-5)
    image = torch.randn((1, 20, 20, 20), generator=torch.Generator().manual_seed(4))
    logits = []
    for net in (network, compiled):  # the whole sliding window (tiles, mirroring) through each network
        predictor = nnUNetPredictor(device=torch.device("cpu"), verbose=False, allow_tqdm=False)
        predictor.manual_initialization(net, model.plans, model.configuration, None, model.dataset_json,
                                        model.trainer_name, model.mirror_axes)
        logits.append(predictor.predict_logits_from_preprocessed_data(image).float())
    torch.testing.assert_close(logits[1], logits[0], rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------------------------- host reads


@pytest.mark.parametrize("name, per_step", [("TinyTestTrainer", 0), ("Float16FusedCpuTrainer", 0),
                                            # torch's GradScaler reads the inf flag of an unfused optimizer on
                                            # the host: the reason SGD is fused on CUDA
                                            ("Float16CpuTrainer", 1)])
def test_steps_read_nothing_on_the_host_the_epoch_end_once(dataset, name, per_step):
    trainer, train, val = _ready(name)
    batches = [next(train) for _ in range(3)]
    val_batches = [next(val) for _ in range(2)]
    trainer.network.train()
    with counting_host_reads() as calls:
        outputs = [trainer.train_step(b) for b in batches]
    assert sum(calls.values()) == per_step * len(batches), dict(calls)
    assert all(isinstance(o["loss"], torch.Tensor) for o in outputs)
    trainer.network.eval()
    with torch.no_grad(), counting_host_reads() as calls:
        val_outputs = [trainer.validation_step(b) for b in val_batches]
    assert sum(calls.values()) == 0, dict(calls)
    with counting_host_reads() as calls:
        trainer.on_train_epoch_end(outputs)
    assert calls["cpu"] == 1, dict(calls)  # all steps' losses in one copy
    with counting_host_reads() as calls:
        trainer.on_validation_epoch_end(val_outputs)
    assert calls["cpu"] == 2, dict(calls)  # one copy per dtype: the float losses, the int64 counts


def test_epoch_end_accepts_numpy_from_steps_written_for_nnunet(dataset):
    """A trainer file written for nnU-Net 2.8.1 overrides the steps and returns numpy: same logged values."""
    trainer, train, val = _ready("TinyTestTrainer")
    trainer.network.train()
    outputs = [trainer.train_step(next(train)) for _ in range(2)]
    trainer.network.eval()
    with torch.no_grad():
        val_outputs = [trainer.validation_step(next(val)) for _ in range(2)]

    def as_numpy(output):
        return {k: v.cpu().numpy() for k, v in output.items()}

    logged = []
    for epoch, convert in enumerate((lambda o: o, as_numpy)):
        trainer.current_epoch = epoch
        trainer.on_train_epoch_end([convert(o) for o in outputs])
        trainer.on_validation_epoch_end([convert(o) for o in val_outputs])
        logs = trainer.logger.my_fantastic_logging
        logged.append([logs[k][epoch] for k in ("train_losses", "val_losses", "mean_fg_dice")]
                      + logs["dice_per_class_or_region"][epoch])
    assert logged[0] == logged[1]
    assert all(isinstance(v, float) for v in logged[0])


def test_outputs_to_host_mixes_tensors_and_numpy():
    outputs = [{"a": torch.tensor(1.5), "b": torch.tensor([1, 2])}, {"a": np.float32(2.5), "b": np.array([3, 4])},
               {"a": torch.tensor(3.5), "b": torch.tensor([5, 6])}]
    host = outputs_to_host(outputs, ("a", "b"))
    assert [float(v) for v in host["a"]] == [1.5, 2.5, 3.5]
    assert np.array_equal(np.sum(host["b"], 0), [9, 12]) and host["b"][0].dtype == np.int64


# --------------------------------------------------------------------------------------------- fused SGD


def _linear() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LeakyReLU(), torch.nn.Linear(5, 3))


def test_sgd_implementation_per_device(monkeypatch):
    assert sgd_implementation(torch.device("cpu")) == {}
    assert sgd_implementation(torch.device("mps")) == {}
    assert sgd_implementation(torch.device("cuda", 1)) == {"fused": True}
    net = _linear()
    default = build_optimizer("SGD", net.parameters(), 1e-2, 3e-5)
    group = default.param_groups[0]
    assert (group["fused"], group["foreach"], group["momentum"], group["nesterov"]) == (None, None, 0.99, True)
    assert group["weight_decay"] == 3e-5 and group["lr"] == 1e-2
    monkeypatch.setattr(optimizers, "_device_of", lambda params: torch.device("cuda"))  # as if the net were on CUDA
    fused = build_optimizer("SGD", net.parameters(), 1e-2, 3e-5)
    assert fused.param_groups[0]["fused"] is True and fused._step_supports_amp_scaling
    assert build_optimizer("SGD", net.parameters(), 1e-2, 3e-5, foreach=True).param_groups[0]["fused"] is None

    class OldSGD(torch.optim.SGD):  # torch without a fused SGD: no ``fused`` in the constructor
        def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False):
            super().__init__(params, lr, momentum, dampening, weight_decay, nesterov)

    monkeypatch.setattr(torch.optim, "SGD", OldSGD)
    assert sgd_implementation(torch.device("cuda")) == {}


def _steps(optimizer_kwargs: dict, input_scales) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Float16 steps with a GradScaler as the trainer takes them; an input scale of 1e30 overflows."""
    net = _linear()
    optimizer = build_optimizer("SGD", net.parameters(), 1e-2, 3e-5, **optimizer_kwargs)
    scaler = make_grad_scaler(torch.device("cpu"), enabled=True)
    generator = torch.Generator().manual_seed(1)
    for scale in input_scales:
        optimizer.zero_grad(set_to_none=True)
        x = torch.randn((4, 6), generator=generator) * scale
        with torch.autocast("cpu", dtype=torch.float16):
            loss = net(x).float().square().mean()
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 12.0)
        scaler.step(optimizer)
        scaler.update()
    return [p.detach() for p in net.parameters()], torch.tensor(scaler.get_scale())


@pytest.mark.parametrize("input_scales", [[1, 1, 1, 1], [1e30, 1, 1, 1], [1, 1e30, 1, 1]],
                         ids=["clean", "first step overflows", "later step overflows"])
def test_fused_sgd_steps_equal_the_unfused_ones(input_scales):
    unfused, scale_unfused = _steps({}, input_scales)
    fused, scale_fused = _steps({"fused": True}, input_scales)
    assert scale_fused == scale_unfused
    for a, b in zip(fused, unfused):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        assert torch.isfinite(a).all()


def test_resuming_keeps_the_optimizers_own_implementation():
    net = _linear()
    unfused = build_optimizer("SGD", net.parameters(), 1e-2, 3e-5)
    net(torch.randn(2, 6)).sum().backward()
    unfused.step()
    saved = unfused.state_dict()  # e.g. a checkpoint of nnU-Net 2.8.1, or of a CPU run
    fused = build_optimizer("SGD", net.parameters(), 1e-2, 3e-5, fused=True)
    load_optimizer_state(fused, saved)
    assert fused.param_groups[0]["fused"] is True
    for p in net.parameters():
        torch.testing.assert_close(fused.state[p]["momentum_buffer"], unfused.state[p]["momentum_buffer"])
    scaler = make_grad_scaler(torch.device("cpu"), enabled=True)
    net.zero_grad()
    scaler.scale(net(torch.randn(2, 6)).sum()).backward()
    scaler.unscale_(fused)
    scaler.step(fused)  # with the saved flag (fused None) torch's SGD refuses the scaler's arguments
    scaler.update()
    load_optimizer_state(unfused, fused.state_dict())
    assert unfused.param_groups[0]["fused"] is None


# --------------------------------------------------------------------------------------------- final validation


def test_final_validation_predicts_with_the_compiled_network(dataset, monkeypatch):
    torch._dynamo.reset()  # graphs compiled by earlier tests would serve this network too: count fresh ones
    trainer, train, _ = _ready("CompileAotEagerTrainer")
    trainer.network.train()
    trainer.train_step(next(train))
    trainer.output_folder.mkdir(parents=True, exist_ok=True)
    seen = []
    real = trainer_loop.run_final_validation

    def recording(job):
        seen.append(job.network)
        return real(job)

    monkeypatch.setattr(trainer_loop, "run_final_validation", recording)
    calls = []
    trainer.network.register_forward_pre_hook(lambda *_: calls.append(1))  # on the compiled wrapper
    counters.clear()
    summary = trainer.perform_actual_validation()
    assert seen == [trainer.network] and hasattr(seen[0], "_orig_mod")
    assert len(calls) >= 8 and counters["stats"]["unique_graphs"] >= 1  # tiles x mirrorings, newly traced
    assert not counters["graph_break"]
    assert np.isfinite(summary["foreground_mean"]["Dice"])
    assert weights_fingerprint(trainer.network, (0, 1, 2)) == weights_fingerprint(unwrap(trainer.network),
                                                                                  (0, 1, 2))
