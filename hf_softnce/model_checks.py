"""Which kind of model each piece takes, checked where it is built, with a one-line message saying what to pass.

A bi-encoder (``SentenceTransformer``) embeds queries and codes separately: the losses, the miner, the evaluator and
the cascade's retriever need one. A cross-encoder (``CrossEncoder``) scores (query, code) pairs: the cascade's ranker.
Handed the other kind (or a path), they used to construct silently and fail later, deep inside
(``'str' object is not callable``, ``AttributeError``, an ``input_ids`` message).

A model loaded by path has its folder checked first (:func:`check_model_folder`): every loader of hf_softnce (the
CLI, the training code and recipes, the embedding and trained-model weighters) calls it before sentence-transformers.
"""

from __future__ import annotations


def _kind(model) -> str:
    if isinstance(model, str):
        return f"the str {model!r}"
    return f"a {type(model).__name__}"


def require_bi_encoder(model, where: str) -> None:
    """Raise ``TypeError`` unless ``model`` is a SentenceTransformer; ``where`` names the caller, e.g. ``"SoftInfoNCELoss"``."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    if isinstance(model, SentenceTransformer):
        return
    if isinstance(model, str):
        hint = f"load it first: SentenceTransformer({model!r})"
    elif isinstance(model, CrossEncoder):
        hint = "a CrossEncoder scores (query, code) pairs and can only re-rank: RetrieverRanker(retriever, ranker)"
    else:
        hint = "e.g. SentenceTransformer('sentence-transformers/all-MiniLM-L6-v2')"
    raise TypeError(f"{where} needs a SentenceTransformer (a bi-encoder), got {_kind(model)}; {hint}.")


def require_cross_encoder(model, where: str) -> None:
    """Raise ``TypeError`` unless ``model`` scores pairs: a CrossEncoder, or any object with ``predict`` that is
    not a bi-encoder (a ranker of one's own)."""
    from sentence_transformers import SentenceTransformer

    if callable(getattr(model, "predict", None)) and not isinstance(model, (str, SentenceTransformer)):
        return
    hint = f"load it first: CrossEncoder({model!r})" if isinstance(model, str) else "e.g. CrossEncoder(path, num_labels=1)"
    raise TypeError(f"{where} needs a CrossEncoder (a ranker scoring (query, code) pairs), got {_kind(model)}; {hint}.")


# What sentence-transformers reads a folder as: these files say "a SentenceTransformer (or CrossEncoder) was saved here".
SENTENCE_TRANSFORMER_FILES = ("modules.json", "config_sentence_transformers.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
# Other backends keep their weights in a folder of their own.
WEIGHT_FOLDERS = ("onnx", "openvino")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
# Module classes (by name) that save weights of their own; a Transformer also saves its config and tokenizer.
WEIGHTED_MODULES = ("Dense", "LayerNorm", "WeightedLayerPooling", "CNN", "LSTM", "WordEmbeddings", "StaticEmbedding")


class IncompleteModelFolder(FileNotFoundError):
    """A saved model folder lacks a file that loading needs; sentence-transformers would load something else in
    silence (without modules.json: no Dense layer; without tokenizer files: a vocabulary of special tokens)."""


def check_model_folder(path) -> None:
    """Raise :class:`IncompleteModelFolder` (one line naming the missing file) when ``path`` is a folder that claims to
    be a SentenceTransformer (``modules.json`` or ``config_sentence_transformers.json``) but lacks ``modules.json``, a
    module's folder, a module's weights or the Transformer's config or tokenizer files; or a plain transformers folder
    (``config.json``) without its weights. Anything else (a Hub id) is left to the loader."""
    import json
    import os

    path = os.fspath(path)
    if not os.path.isdir(path):
        return
    claims = [name for name in SENTENCE_TRANSFORMER_FILES if os.path.isfile(os.path.join(path, name))]
    if not claims:
        # A transformers folder: its weights, checked here; its tokenizer files vary too much by model family
        # (spm.model, none at all for ByT5) to check, and are left to the loader.
        config = os.path.join(path, "config.json")
        if os.path.isfile(config) and not any(os.path.isfile(os.path.join(path, name)) for name in WEIGHT_FILES) \
                and not any(os.path.isdir(os.path.join(path, name)) for name in WEIGHT_FOLDERS):
            raise IncompleteModelFolder(f"model folder {path!r} has config.json but no weights (none of "
                                        f"{', '.join(WEIGHT_FILES)}).")
        return
    modules_file = os.path.join(path, "modules.json")
    if not os.path.isfile(modules_file):
        raise IncompleteModelFolder(
            f"model folder {path!r} has {claims[0]} but no modules.json: it is an incomplete SentenceTransformer "
            "(loading it would drop every module after the transformer); save the model again."
        )
    try:
        with open(modules_file, encoding="utf-8") as file:
            modules = json.load(file)
        entries = [(str(module.get("path", "")), str(module["type"])) for module in modules]
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise IncompleteModelFolder(f"{modules_file} is not a list of modules ({type(error).__name__}).") from None
    for relative, module_type in entries:
        _check_module_folder(path, relative, module_type.rsplit(".", 1)[-1])


def _check_module_folder(root: str, relative: str, kind: str) -> None:
    import os

    folder = os.path.join(root, relative) if relative else root
    holds_files = kind.endswith("Transformer") or kind in WEIGHTED_MODULES
    if not os.path.isdir(folder) and not holds_files:
        # Modules without weights (Normalize, often Pooling) load from their defaults: sentence-transformers' own
        # packaged models ship without those folders.
        return
    if not os.path.isdir(folder):
        raise IncompleteModelFolder(f"model folder {root!r} is missing {relative}/, the folder of its {kind} module.")
    needs = []
    if kind.endswith("Transformer"):
        needs = [("config", ("config.json",)), ("tokenizer files", TOKENIZER_FILES)]
    if kind.endswith("Transformer") or kind in WEIGHTED_MODULES:
        if not any(os.path.isdir(os.path.join(folder, name)) for name in WEIGHT_FOLDERS):
            needs.append(("weights", WEIGHT_FILES))
    for what, names in needs:
        if not any(os.path.isfile(os.path.join(folder, name)) for name in names):
            files = ", ".join(os.path.join(relative, name) for name in names)
            raise IncompleteModelFolder(
                f"model folder {root!r} is missing its {kind} module's {what} ({'none of ' if len(names) > 1 else ''}"
                f"{files})."
            )
