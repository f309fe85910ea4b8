"""Every loss × dataset × model composes, validates and instantiates into a trainable module."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from ganbench.losses import GANLoss
from ganbench.run import build_module
from ganbench.train import CONFIG_DIR
from ganbench.vae import ELBO
from ganbench.validate import validate
from tests.helpers.configs import DATASETS, LOSSES, MODELS, choices


def test_all_documented_losses_exist() -> None:
    assert {"mm", "ns", "lsgan", "wgan", "wgan_gp", "hinge", "dragan", "r1"} <= set(LOSSES)


def _check_composes(cfg: DictConfig) -> None:
    validate(cfg)
    module = build_module(cfg)
    assert isinstance(module.loss, GANLoss | ELBO) and module.loss.name == cfg.loss.name
    assert module.n_critic == cfg.training.n_critic
    optimizers = module.configure_optimizers()
    assert [group["lr"] for opt in optimizers for group in opt.param_groups] == [cfg.optim.lr] * 2
    assert instantiate(cfg.dataset).name == cfg.dataset.name
    evaluation = instantiate(cfg.eval)
    assert evaluation.primary in {"modes", "fid", "f1", "mean_gap"}


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_composes_with_every_dataset(make_config, loss: str, dataset: str) -> None:
    """With the dataset's own model and evaluation protocol (mlp + mixture, infogan + inception, ...)."""
    _check_composes(make_config(f"loss={loss}", f"dataset={dataset}"))


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_composes_with_every_dataset_it_supports(make_config, model: str, dataset: str) -> None:
    cfg = make_config(f"model={model}", f"dataset={dataset}")
    image_size = cfg.dataset.get("image_size")
    if (model == "mlp") != (image_size is None):
        pytest.skip("the MLP is for 2-D points, the other models for images")
    if model == "resnet" and image_size != 32:
        pytest.skip("the SNGAN ResNet is defined for 32 px")
    _check_composes(cfg)


LABELLED = [dataset for dataset in DATASETS if dataset not in ("triangles", "celeba")]
CONDITIONAL_LOSSES = [loss for loss in LOSSES if loss not in ("began", "vae")]


@pytest.mark.parametrize("dataset", LABELLED)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_is_conditional_on_every_labelled_dataset_it_supports(
    make_config, model: str, dataset: str
) -> None:
    cfg = make_config("conditional=true", f"model={model}", f"dataset={dataset}")
    image_size = cfg.dataset.get("image_size")
    if (model == "mlp") != (image_size is None) or (model == "resnet" and image_size != 32):
        pytest.skip("a model for other data")
    _check_composes(cfg)
    module = build_module(cfg)
    classes = cfg.dataset.num_classes
    assert module.generator.num_classes == classes and module.discriminator.num_classes == classes
    assert instantiate(cfg.dataset).labels


@pytest.mark.parametrize("loss", CONDITIONAL_LOSSES)
def test_every_gan_loss_composes_conditionally(make_config, loss: str) -> None:
    _check_composes(make_config("conditional=true", f"loss={loss}", "dataset=grid"))


def test_loss_carries_its_reference_defaults(make_config) -> None:
    """Lucic et al.'s D steps per G step and β1 come with the loss; the dataset sets the budget and learning rate."""
    wgan_gp = make_config("loss=wgan_gp", "dataset=triangles")  # a benchmark without a conf/loss_dataset/ file
    assert wgan_gp.training.n_critic == 5 and wgan_gp.optim.beta1 == 0.5 and wgan_gp.loss.penalty.weight == 10
    ns = make_config("loss=ns")
    assert ns.training.n_critic == 1 and ns.optim.beta1 == 0.0
    assert make_config("loss=wgan").loss.constraint.clip == 0.01
    assert ns.training.g_steps == 5000 and ns.optim.lr == 1e-3


def test_command_line_overrides_win(make_config) -> None:
    cfg = make_config("loss=wgan_gp", "optim.lr=3e-4", "training.n_critic=2", "loss.penalty.weight=1")
    assert (cfg.optim.lr, cfg.training.n_critic, cfg.loss.penalty.weight) == (3e-4, 2, 1)
    assert cfg.optim.generator.lr == 3e-4 and cfg.optim.discriminator.lr == 3e-4


def test_every_loss_dataset_file_names_a_loss_and_a_dataset() -> None:
    """The group is selected by the name ``<loss>_<dataset>``: a misspelt file would never apply, silently."""
    pairs = {f"{loss}_{dataset}" for loss in LOSSES for dataset in DATASETS}
    assert set(choices("loss_dataset")) <= pairs


@pytest.mark.parametrize("dataset", ["ring", "grid"])
def test_wgan_gp_gets_its_authors_toy_setting_on_the_mixtures(make_config, dataset: str) -> None:
    """Gulrajani et al.'s gan_toy.py: λ 0.1 and Adam β2 0.9; the rest stays the loss's and the benchmark's."""
    cfg = make_config("loss=wgan_gp", f"dataset={dataset}")
    assert (cfg.loss.penalty.weight, cfg.optim.beta2) == (0.1, 0.9)
    assert (cfg.training.n_critic, cfg.optim.beta1, cfg.optim.lr, cfg.training.g_steps) == (5, 0.5, 1e-3, 5000)
    assert build_module(cfg).loss.penalty.weight == 0.1


def test_a_pair_without_a_file_composes_as_before(make_config) -> None:
    cfg = make_config("loss=wgan_gp", "dataset=triangles")
    assert (cfg.loss.penalty.weight, cfg.optim.beta2) == (10.0, 0.999)
    assert make_config("loss=dragan").loss.penalty.weight == 10.0 and make_config("loss=ns").optim.beta2 == 0.999


def test_command_line_overrides_win_over_the_benchmark_setting(make_config) -> None:
    """As the search's drawn λ (a sweeper override is a command-line override)."""
    cfg = make_config("loss=wgan_gp", "dataset=grid", "loss.penalty.weight=3", "optim.beta2=0.99")
    assert (cfg.loss.penalty.weight, cfg.optim.beta2) == (3, 0.99)


def test_presets_see_the_dataset_they_end_up_with(make_config) -> None:
    """study_cpu takes the dataset from the command line; triangles_cpu overrides /dataset itself."""
    assert make_config("experiment=study_cpu", "dataset=grid", "loss=wgan_gp").loss.penalty.weight == 0.1
    assert make_config("experiment=study_cpu", "dataset=ring", "loss=wgan_gp").loss.penalty.weight == 0.1
    assert make_config("experiment=triangles_cpu", "loss=wgan_gp").loss.penalty.weight == 10.0


def test_rmsprop_selectable(make_config) -> None:
    module = build_module(make_config("loss=wgan", "optim=rmsprop"))
    assert all(type(opt).__name__ == "RMSprop" for opt in module.configure_optimizers())


@pytest.mark.parametrize("experiment", choices("experiment"))
def test_every_experiment_preset_composes(make_config, experiment: str) -> None:
    _check_composes(make_config(f"experiment={experiment}"))


@pytest.mark.parametrize("launcher", choices("launcher"))
def test_every_launcher_composes_with_a_search(launcher: str) -> None:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("config", [f"launcher={launcher}", "search=lucic_wide"], return_hydra_config=True)
    assert cfg.hydra.sweeper._target_.endswith(".GanbenchSweeper")
    assert cfg.hydra.launcher._target_.split(".")[-1] in {"BasicLauncher", "PoolLauncher"}
    assert cfg.hydra.launcher.get("slots", 1) == cfg.parallel_jobs  # the sweep's slots: parallel_jobs
