"""int8 graphs by onnxruntime's dynamic quantization.

`quantize_dynamic` stores the weights of the matrix products (MatMul / Gemm: the input
projections of the recurrent layers, which run once for all time steps, the attention and output
layers, and the recurrent products inside the `Scan` bodies) as int8 with a per-tensor scale, and
quantizes each activation at run time from its own range; nothing needs calibration data.
onnxruntime rather than torch's `quantize_dynamic`: torch's int8 modules do not export to ONNX,
and the graph is what a client runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def quantize_int8(source: Path, target: Path) -> None:
    """Write the int8 version of the graph at `source` to `target` (they may be one path)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_dynamic(str(prepared), str(target), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm"],
                         extra_options={"EnableSubgraph": True})
