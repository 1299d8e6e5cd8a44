"""The transformers fallback: checkpoints without safetensors weights, and architectures whose
embedding tensors cannot be named from the file alone. torch and transformers are imported
here only inside functions, when a build needs them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelNotFoundError, TiedEmbeddings
from ..reporting import Report, info
from .extracted import as_matrix
from .failures import first_line


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers (and torch) without their progress bars, logging and warnings on stderr:
    tokneigh's own progress lines are the only ones a build prints."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()


def name_from_transformers(folder: Path, names: list[str]) -> str:
    """Ask transformers which parameter is the input embedding, without allocating weights."""
    try:
        with quiet_transformers():
            import torch
            from transformers import AutoConfig, AutoModel

            config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
            with torch.device("meta"):
                model = AutoModel.from_config(config, trust_remote_code=False)
            weight = model.get_input_embeddings().weight
            param = next(n for n, p in model.named_parameters() if p is weight)
    except Exception as exc:  # transformers raises many kinds; all mean "unknown architecture"
        raise ModelNotFoundError(
            f"cannot tell which tensor of {folder} is the input embedding: {first_line(exc)}"
        ) from exc
    for name in names:
        if name == param or name.endswith("." + param):
            return name
    raise ModelNotFoundError(f"no tensor named like {param!r} in the checkpoint")


def read_with_transformers(folder: Path, report: Report) -> tuple[np.ndarray, str]:
    report(info("loading the checkpoint with transformers (no safetensors file)"))
    try:
        with quiet_transformers():
            from transformers import AutoModel

            model = AutoModel.from_pretrained(str(folder), trust_remote_code=False)
    except Exception as exc:  # transformers raises many kinds; all mean "unreadable checkpoint"
        raise ModelNotFoundError(
            f"the checkpoint in {folder} cannot be loaded ({first_line(exc)})"
        ) from exc
    embedding = model.get_input_embeddings()
    name = next(n for n, p in model.named_parameters() if p is embedding.weight)
    return as_matrix(embedding.weight.detach().float().numpy(), name), name


# --- output embeddings (the LM head) -------------------------------------------------------


def _output_model_on_meta(folder: Path) -> Any:
    """The checkpoint's own architecture (config.architectures), built without weights."""
    with quiet_transformers():
        import torch
        import transformers
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        names = getattr(config, "architectures", None) or []
        model_class = getattr(transformers, names[0], None) if names else None
        with torch.device("meta"):
            if isinstance(model_class, type) and issubclass(
                model_class, transformers.PreTrainedModel
            ):
                return model_class(config)
            return AutoModelForCausalLM.from_config(config, trust_remote_code=False)


def output_name_from_transformers(folder: Path, names: list[str]) -> str | None:
    """Ask transformers which parameter is the output embedding; None when it is tied."""
    try:
        model = _output_model_on_meta(folder)
        head = model.get_output_embeddings()
        if head is None or head.weight is model.get_input_embeddings().weight:
            return None
        param = next(n for n, p in model.named_parameters() if p is head.weight)
    except Exception as exc:  # transformers raises many kinds; all mean "unknown architecture"
        raise ModelNotFoundError(
            f"cannot tell which tensor of {folder} is the output embedding: {first_line(exc)}"
        ) from exc
    for name in names:
        if name == param or name.endswith("." + param):
            return name
    return None


def read_output_with_transformers(folder: Path, report: Report) -> tuple[np.ndarray, str]:
    report(info("loading the checkpoint with transformers (no safetensors file)"))
    try:
        with quiet_transformers():
            import transformers
            from transformers import AutoConfig, AutoModelForCausalLM

            config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
            names = getattr(config, "architectures", None) or []
            model_class = getattr(transformers, names[0], None) if names else None
            if not (
                isinstance(model_class, type)
                and issubclass(model_class, transformers.PreTrainedModel)
            ):
                model_class = AutoModelForCausalLM
            model = model_class.from_pretrained(str(folder), trust_remote_code=False)
    except Exception as exc:  # transformers raises many kinds; all mean "unreadable checkpoint"
        raise ModelNotFoundError(
            f"the checkpoint in {folder} cannot be loaded ({first_line(exc)})"
        ) from exc
    head = model.get_output_embeddings()
    if head is None:
        raise TiedEmbeddings("the model has no LM head")
    if head.weight is model.get_input_embeddings().weight:
        raise TiedEmbeddings("transformers ties its output embeddings to the input embeddings")
    name = next(n for n, p in model.named_parameters() if p is head.weight)
    return as_matrix(head.weight.detach().float().numpy(), name), name
