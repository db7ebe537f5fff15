"""What :mod:`xai.estimate` multiplies: each planned stage's image forward passes per network, from the run plan,
and this machine's seconds per image for each network, from the batch-size measurement (:mod:`xai.batching`).

Seconds per image come from the measurement's cache (``<cache>/batch-sizes``, per machine): the stage's own search
for the best batch size when it ran here before, else a one-batch timing taken for an earlier estimate. A network
with neither is timed now, on one batch of :data:`ESTIMATE_BATCH` images (a model of the same architecture with
random weights: they cost what pretrained ones do), only where its stage's ``batch_size`` is ``auto``: a configured
size says the user chose not to spend time measuring, and the estimate then says it is unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from xai.estimate import Network, StageWork

if TYPE_CHECKING:
    from xai.context import RunContext
    from xai.plan import DissectPlan, ExplainPlan, RunPlan

CLIP_NAME = "CLIP ViT-B/16"
CLIP_MODEL_ID = "clip:encode_image"
"""The dissect stage's measurement of CLIP's image encoder (:func:`xai.stages.probe_shards.pass_batch_size`)."""
CLIP_SHAPE = (3, 224, 224)
CLIP = Network(CLIP_NAME, CLIP_MODEL_ID, CLIP_SHAPE)
ESTIMATE_BATCH = 8
"""Images per timed batch for an estimate (one warm-up, one timed batch): seconds on a CPU, not the stage's full
search over 4-32 (whose result, once the stage has run, takes precedence)."""


def explain_network(planned: ExplainPlan, image_shape: tuple[int, ...]) -> Network:
    """The explained model as the explain stage measures it (``<model id>:channels_last`` at the image's size)."""
    height, width = image_shape[:2]
    return Network(planned.model_id, f"{planned.model_id}:channels_last", (3, height, width))


def probe_networks(planned: DissectPlan) -> list[Network]:
    """CLIP, then each dissected model (one network per architecture and input size)."""
    from PIL import Image

    from xai.dissect.layers import probe_transform

    networks = [CLIP]
    for entry in planned.models:
        spec = entry.model.spec
        shape = tuple(probe_transform(spec)(Image.new("RGB", (256, 256))).shape)
        networks.append(Network(spec.architecture, f"{spec.architecture}:channels_last", shape))
    return networks


def probe_count(planned: DissectPlan, count_files: Callable[[], int] | None = None) -> int:
    """Probe images of ``planned``: the files (``count_files``, which lists them when they are on disk), else Broden's
    known size; capped by ``probe_limit``."""
    from xai.dissect.probes import BRODEN_IMAGE_COUNT

    count = count_files() if count_files is not None else BRODEN_IMAGE_COUNT
    return min(count, planned.probe_limit) if planned.probe_limit else count


def method_passes(methods: tuple[str, ...], *, lime_samples: int, channels: int) -> int:
    """Forward passes per image of ``methods``, from the method registry's cost model."""
    from xai.explain.registry import METHODS

    return sum(METHODS[m].forward_passes(lime_samples=lime_samples, target_channels=channels) for m in methods)


def stage_work(plan: RunPlan, *, n_images: int, image_shape: tuple[int, ...], n_probe: int | None) -> list[StageWork]:
    """Every planned stage's forward passes, from scratch, for ``n_images`` input images of ``image_shape`` (H, W, C)
    and ``n_probe`` probe images (None: no dissection planned): each stage counts its own (the ``work`` function of
    its module, :class:`xai.context.Stage`). Arithmetic only: nothing is loaded or run."""
    from xai.context import stage

    return [stage(name).work(plan, n_images=n_images, image_shape=image_shape, n_probe=n_probe) for name in plan.run]


def _forward(network: Network, device: torch.device) -> Callable[[], Callable[[torch.Tensor], Any]]:
    """A factory of ``network``'s forward with random weights of its architecture (what the stage times)."""

    def make() -> Callable[[torch.Tensor], Any]:
        if network.model_id == CLIP_MODEL_ID:
            from xai.clip import build_clip
            from xai.dissect.clip_embed import image_input_dtype

            module, _ = build_clip(None, device=device)
            dtype = image_input_dtype(module)
            return lambda batch: module.encode_image(batch.to(dtype))
        import torchvision

        from xai.explain.inference import fast_layout

        architecture = network.model_id.removesuffix(":channels_last")
        model = torchvision.models.get_model(architecture, weights=None).eval().to(device)
        return lambda batch: model(fast_layout(batch))

    return make


def seconds_per_image(
    networks: list[Network],
    context: RunContext,
    *,
    measure: set[str],
    store: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, float | None]:
    """Each network's seconds per image on this machine (model id -> seconds, None when unknown): the stage's stored
    batch-size search, else a stored estimate timing, else, for the model ids in ``measure``, one batch timed now and
    stored (``store=False``, as ``--plan`` runs: timed but not stored, so the plan writes nothing). A network that
    cannot be built from its id (a checkpoint-only architecture) stays None."""
    from xai.batching import BatchSizeCache, resolve_batch_size

    found: dict[str, float | None] = {}
    cache = BatchSizeCache(context.cache.root)
    for network in networks:
        if network.model_id in found:
            continue
        common = {"device": context.device, "input_shape": network.input_shape, "configured": "auto",
                  "model_id": network.model_id, "cache": cache}  # fmt: skip
        one_batch = {**common, "candidates": (ESTIMATE_BATCH,), "rounds": 1}
        choice = resolve_batch_size(None, **common) or resolve_batch_size(None, **one_batch)
        if choice is None and network.model_id in measure:
            log(f"timing {network.name} on a batch of {ESTIMATE_BATCH} for the estimate (once per machine)")
            try:
                timed = one_batch if store else {**one_batch, "cache": None}
                choice = resolve_batch_size(_lazy(_forward(network, context.device)), **timed)
            except (ValueError, RuntimeError) as error:  # an architecture torchvision does not know; out of memory
                log(f"could not time {network.name}: {str(error).splitlines()[0][:120]}")
                choice = None
        found[network.model_id] = choice.per_image_s if choice is not None else None
    return found


def _lazy(make: Callable[[], Callable[[torch.Tensor], Any]]) -> Callable[[torch.Tensor], Any]:
    made: list[Callable[[torch.Tensor], Any]] = []

    def run(batch: torch.Tensor) -> Any:
        if not made:
            made.append(make())
        return made[0](batch)

    return run
