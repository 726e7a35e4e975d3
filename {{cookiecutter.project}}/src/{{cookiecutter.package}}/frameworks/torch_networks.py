"""What every task's PyTorch network shares: the device, the training loop, the ONNX export.

The loop is deterministic on CPU: batches are drawn from a generator seeded by the caller,
and the best epoch's weights (lowest validation loss) are restored when training ends.
"""

from __future__ import annotations

import copy
import io

import onnx
import torch
from tqdm.auto import tqdm

from ..config import LoopParams
from ..onnx_graph import OPSET
from . import Progress, quiet


def device(choice: str) -> torch.device:
    """``auto`` takes CUDA, then Apple's MPS, then the CPU (the only deterministic one)."""
    if choice == "auto":
        choice = (
            "cuda"
            if torch.cuda.is_available()
            else "mps"
            if torch.backends.mps.is_available()
            else "cpu"
        )
    return torch.device(choice)


def fit_epochs(
    model: torch.nn.Module,
    fit: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    params: LoopParams,
    seed: int,
    progress: Progress | None = None,
    description: str = "train",
) -> list[dict[str, float]]:
    """Train ``model``'s trainable parameters (logits out) with AdamW; return the curves.

    Stops after ``patience`` epochs without a lower validation loss and keeps the best
    epoch's weights; ``progress`` gets each epoch's curve entry.
    """
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    (x_fit, y_fit), (x_val, y_val) = fit, val
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=params.learning_rate, weight_decay=params.weight_decay
    )
    loss_of = torch.nn.CrossEntropyLoss()
    shuffle = torch.Generator().manual_seed(seed)
    curves: list[dict[str, float]] = []
    best_loss, best_state, waited = float("inf"), copy.deepcopy(model.state_dict()), 0
    epochs = tqdm(range(params.max_epochs), desc=description, unit="epoch", disable=None)
    for _ in epochs:
        model.train()
        total = 0.0
        for batch in torch.randperm(len(x_fit), generator=shuffle).split(params.batch_size):
            optimizer.zero_grad()
            loss = loss_of(model(x_fit[batch]), y_fit[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            logits = model(x_val)
            val_loss = float(loss_of(logits, y_val))
            val_accuracy = float((logits.argmax(dim=1) == y_val).float().mean())
        curves.append(
            {"train_loss": total / len(x_fit), "val_loss": val_loss, "val_accuracy": val_accuracy}
        )
        epochs.set_postfix(curves[-1])
        if progress:
            progress(curves[-1])
        if val_loss < best_loss:
            best_loss, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= params.patience:
                break
    model.load_state_dict(best_state)
    return curves


def exported(network: torch.nn.Module, example: torch.Tensor, input_name: str) -> onnx.ModelProto:
    """``network`` (logits out) with a softmax, through ``torch.onnx``: ``probabilities`` out.

    ``example`` is a batch of two inputs; the exported graph takes any number of rows.
    """
    buffer = io.BytesIO()
    with quiet("torch.onnx", "onnx_ir", "onnxscript"):
        torch.onnx.export(
            torch.nn.Sequential(network, torch.nn.Softmax(dim=1)).eval(),
            (example,),
            buffer,
            input_names=[input_name],
            output_names=["probabilities"],
            dynamic_shapes=({0: torch.export.Dim("rows")},),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return onnx.load_from_string(buffer.getvalue())
