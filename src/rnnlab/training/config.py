"""The optimisation settings every task shares (the task's own config holds data and model)."""

from __future__ import annotations

from dataclasses import dataclass

from rnnlab.config import check_fields, field
from rnnlab.training.precision import PRECISIONS


@dataclass(frozen=True)
class TrainConfig:
    optimizer: str = field("adamw", "adamw or sgd", choices=("adamw", "sgd"))
    lr: float = field(2e-3, "learning rate", gt=0.0)
    weight_decay: float = field(0.0, "decoupled weight decay (AdamW) or L2 (SGD)", ge=0.0)
    momentum: float = field(0.0, "SGD momentum", ge=0.0, lt=1.0)
    schedule: str = field(
        "constant",
        "learning-rate schedule: constant; zaremba (x lr_decay each epoch from decay_start); "
        "plateau (x lr_decay when the dev metric does not improve); cosine (to 0 over "
        "--max-steps when set, else over the epochs); inverse-sqrt (lr * sqrt(warmup / step) "
        "after the warm-up, Vaswani et al. 2017)",
        choices=("constant", "zaremba", "plateau", "cosine", "inverse-sqrt"),
    )
    warmup: int = field(0, "raise the learning rate linearly over the first N steps, under any "
                        "schedule (0: no warm-up; inverse-sqrt needs N > 0)", ge=0)
    min_lr: float = field(0.0, "the cosine schedule's final learning rate (nanoGPT: lr / 10)",
                          ge=0.0)
    beta2: float = field(0.999, "AdamW's second-moment decay (nanoGPT's small models: 0.99)",
                         gt=0.0, lt=1.0)
    lr_decay: float = field(0.5, "decay factor of the zaremba/plateau schedules", gt=0.0, le=1.0)
    decay_start: int = field(5, "first epoch (1-based) with a decayed lr (zaremba schedule)", ge=1)
    clip: float = field(5.0, "clip gradients to this global L2 norm (0: no clipping)", ge=0.0)
    ema: float = field(0.0, "evaluate and keep an exponential moving average of the weights "
                       "with this decay, e.g. 0.999 (0: the weights as trained)", ge=0.0, lt=1.0)
    epochs: int = field(10, "number of passes over the training data", ge=1)
    max_steps: int = field(0, "stop after this many optimizer steps in total (0: no limit)", ge=0)
    minutes: float = field(0.0, "stop after this many minutes of this invocation (0: no limit)",
                           ge=0.0)
    eval_every: int = field(0, "also evaluate every N steps (0: only at the end of each epoch)",
                            ge=0)
    patience: int = field(0, "stop after N evaluations without improvement (0: never)", ge=0)
    log_every: int = field(50, "write a training log line every N steps", ge=1)
    seed: int = field(1234, "random seed (initialisation, dropout, batch order)", ge=0)
    device: str = field("auto", "auto (CUDA if present), cpu or cuda")
    threads: int = field(0, "CPU threads for torch (0: torch's default)", ge=0)
    precision: str = field("fp32", "training arithmetic: fp32, or torch autocast in bf16 or fp16 "
                           "(fp16: CUDA only, with a gradient scaler); weights stay fp32",
                           choices=PRECISIONS)
    tensorboard: bool = field(False, "also write TensorBoard event files (loss, dev metrics, "
                              "lr, gradient norm, items/s) into the run directory")

    def __post_init__(self) -> None:
        check_fields(self)
