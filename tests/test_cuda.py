"""The CUDA path against the CPU one: every layer, the CRF and attention give the same numbers
on the GPU, and each task's commands train, decode and reload there (`--device cuda`).

Skipped where torch sees no CUDA device (CI, this project's CPU machines); run on a GPU machine
with `pytest tests/test_cuda.py`.
"""

from __future__ import annotations

import pytest
import torch

from rnnlab.cli.main import main
from rnnlab.nn.attention import make_attention
from rnnlab.nn.crf import CRF
from rnnlab.nn.factory import CELLS, make_recurrent

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(autouse=True)
def full_precision():
    """cuDNN may use TF32 for RNN matrix products; compare in full float32."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def run_both(module: torch.nn.Module, *inputs: torch.Tensor, **kwargs):
    """(outputs, input gradients, parameter gradients) on the CPU and on the GPU."""
    results = []
    for device in ("cpu", "cuda"):
        mod = module.to(device)
        mod.zero_grad()
        xs = [x.detach().to(device).requires_grad_(x.is_floating_point()) for x in inputs]
        out = mod(*xs, **kwargs)
        first = out[0] if isinstance(out, tuple) else out
        (first.float() * torch.linspace(-1, 1, first.numel(), device=device).view_as(first)
         ).sum().backward()
        # clone: moving the module moves its parameters' gradients in place
        results.append((first.detach().cpu().clone(),
                        [x.grad.cpu().clone() for x in xs if x.grad is not None],
                        [p.grad.cpu().clone() for p in mod.parameters()]))
    return results


@pytest.mark.parametrize("impl", ["fused", "loop"])
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_layers_match_cpu(cell, impl):
    torch.manual_seed(0)
    layer = make_recurrent(cell, 7, 12, num_layers=2, bidirectional=True, batch_first=True,
                           impl=impl)
    x = torch.randn(4, 9, 7)
    lengths = torch.tensor([9, 5, 1, 7])
    (cpu_out, cpu_dx, cpu_dp), (gpu_out, gpu_dx, gpu_dp) = run_both(layer, x, lengths=lengths)
    torch.testing.assert_close(gpu_out, cpu_out, rtol=1e-4, atol=1e-5)
    for cpu_g, gpu_g in zip(cpu_dx + cpu_dp, gpu_dx + gpu_dp, strict=True):
        torch.testing.assert_close(gpu_g, cpu_g, rtol=1e-3, atol=1e-5)


def test_crf_likelihood_and_viterbi_match_cpu():
    torch.manual_seed(0)
    crf = CRF(5)
    emissions = torch.randn(3, 6, 5)
    tags = torch.randint(0, 5, (3, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5], dtype=torch.bool)
    cpu = crf.log_likelihood(emissions, tags, mask), crf.decode(emissions, mask)
    crf.cuda()
    gpu = (crf.log_likelihood(emissions.cuda(), tags.cuda(), mask.cuda()),
           crf.decode(emissions.cuda(), mask.cuda()))
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], rtol=1e-5, atol=1e-5)
    assert gpu[1] == cpu[1]


@pytest.mark.parametrize("kind", ["bahdanau", "dot", "general", "concat"])
def test_attention_matches_cpu(kind):
    torch.manual_seed(0)
    attention = make_attention(kind, 8, 8)
    query, memory = torch.randn(2, 8), torch.randn(2, 5, 8)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    cpu = attention(query, memory, mask)
    attention.cuda()
    gpu = attention(query.cuda(), memory.cuda(), mask.cuda())
    for a, b in zip(gpu, cpu, strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-5, atol=1e-6)


def test_language_model_trains_samples_scores_and_resumes_on_cuda(tmp_path, capsys):
    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(f"line {i} on the gpu" for i in range(300)) + "\n")
    run = tmp_path / "run"
    common = ["train", "lm", "--train", str(corpus), "--level", "char", "--hidden", "32",
              "--batch-size", "8", "--bptt", "16", "--device", "cuda", "--run-dir", str(run),
              "--quiet"]
    assert main([*common, "--max-steps", "4"]) == 0
    assert main([*common, "--max-steps", "8", "--resume"]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--prime", "line", "--length", "30", "--seed", "1",
                 "--device", "cuda"]) == 0
    assert capsys.readouterr().out.startswith("line")
    assert main(["score", str(run), "--text", "line 3 on the gpu", "--device", "cuda"]) == 0
    assert main(["eval", str(run), "--split", "valid", "--device", "cuda"]) == 0


def test_between_layer_dropout_follows_torch_seed_on_cuda():
    # cuDNN's own dropout state would give a new mask after re-seeding; torch's follows the seed
    layer = make_recurrent("lstm", 6, 10, num_layers=3, dropout=0.5).cuda().train()
    x = torch.randn(7, 4, 6, device="cuda")
    torch.manual_seed(5)
    first, _ = layer(x)
    torch.manual_seed(5)
    again, _ = layer(x)
    assert torch.equal(first, again)


def test_language_model_resume_is_exact_on_cuda(tmp_path):
    from safetensors.torch import load_file

    from rnnlab.training.checkpoint import latest_checkpoint

    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(f"line {i} on the gpu" for i in range(300)) + "\n")

    def train(run, steps, *extra):
        assert main(["train", "lm", "--train", str(corpus), "--level", "char", "--hidden", "32",
                     "--layers", "2", "--dropout", "0.3", "--batch-size", "8", "--bptt", "16",
                     "--device", "cuda", "--run-dir", str(run), "--quiet", "--max-steps",
                     str(steps), *extra]) == 0
        return load_file(str(latest_checkpoint(run) / "model.safetensors"))

    straight = train(tmp_path / "straight", 8)
    train(tmp_path / "split", 4)
    resumed = train(tmp_path / "split", 8, "--resume")
    for name, tensor in straight.items():
        assert torch.equal(tensor, resumed[name]), name


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_resumes_exactly_on_cuda(tmp_path, precision):
    """Autocast on CUDA (fp16 with its gradient scaler, whose state the checkpoint keeps):
    float32 weights, and a resumed run equals the straight one."""
    from safetensors.torch import load_file

    from rnnlab.training.checkpoint import STATE_FILE, latest_checkpoint

    corpus = tmp_path / "train.txt"
    corpus.write_text("\n".join(f"line {i} on the gpu" for i in range(300)) + "\n")

    def train(run, steps, *extra):
        assert main(["train", "lm", "--train", str(corpus), "--level", "char", "--hidden", "32",
                     "--layers", "2", "--batch-size", "8", "--bptt", "16", "--device", "cuda",
                     "--precision", precision, "--run-dir", str(run), "--quiet", "--max-steps",
                     str(steps), *extra]) == 0
        return load_file(str(latest_checkpoint(run) / "model.safetensors"))

    straight = train(tmp_path / "straight", 8)
    train(tmp_path / "split", 4)
    resumed = train(tmp_path / "split", 8, "--resume")
    for name, tensor in straight.items():
        assert tensor.dtype == torch.float32 and torch.equal(tensor, resumed[name]), name
    saved = torch.load(latest_checkpoint(tmp_path / "split") / STATE_FILE, weights_only=True)
    assert ("scale" in saved["scaler"]) == (precision == "fp16")
