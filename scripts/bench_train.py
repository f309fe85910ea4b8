"""Training throughput of GANModule against a minimal plain-PyTorch loop doing exactly the same work.

Same networks (the paper's InfoGAN at 28 px), same loss object, same n_critic, same batch, same in-memory data and
DataLoader; both run in this process, alternating, so drifts of the machine hit both. Lightning is timed from the
first to the last training batch (Trainer setup excluded), the plain loop likewise after one warm-up step.

    python scripts/bench_train.py                       # CPU: NS (1:1) and WGAN-GP (5:1), batch 64
    python scripts/bench_train.py --device cuda --precision bf16-mixed --compile
    python scripts/bench_train.py --width cpu           # model=infogan_cpu's half-width networks
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ganbench.losses import GANLoss, GradientPenalty, NonSaturating, Wasserstein
from ganbench.module import GANModule
from ganbench.nets.infogan import InfoGANDiscriminator, InfoGANGenerator

LOSSES = {
    "ns": (lambda: GANLoss("ns", NonSaturating()), 1),  # Lucic et al.'s defaults: BN in D for NS, not for WGAN-GP
    "wgan_gp": (lambda: GANLoss("wgan_gp", Wasserstein(), GradientPenalty(10.0)), 5),
}


WIDTHS = {"paper": (1024, 64), "cpu": (512, 32)}  # (hidden, base_channels): model=infogan, model=infogan_cpu


def networks(batch_norm: bool, device: str, width: str) -> tuple[InfoGANGenerator, InfoGANDiscriminator]:
    torch.manual_seed(0)
    hidden, channels = WIDTHS[width]
    generator = InfoGANGenerator(image_size=28, channels=1, hidden=hidden, base_channels=channels)
    discriminator = InfoGANDiscriminator(
        image_size=28, channels=1, batch_norm=batch_norm, hidden=hidden, base_channels=channels
    )
    return generator.to(device), discriminator.to(device)


def loader(n_critic: int, batch: int, steps: int) -> DataLoader:
    images = torch.rand((steps + 2) * n_critic * batch, 1, 28, 28) * 2 - 1
    return DataLoader(TensorDataset(images), batch_size=n_critic * batch, shuffle=True, drop_last=True)


class _Unpack(pl.LightningDataModule):
    def __init__(self, data: DataLoader) -> None:
        super().__init__()
        self.data = data
        self.batches_per_step = 1

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.data.dataset, batch_size=self.data.batch_size, shuffle=True, drop_last=True, collate_fn=_images_only
        )


def _images_only(items: list[tuple[torch.Tensor]]) -> torch.Tensor:
    return torch.stack([item[0] for item in items])


class _StepTimer(pl.Callback):
    def __init__(self) -> None:
        self.started = self.ended = 0.0
        self.steps = 0

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self.steps += 1
        if self.steps == 1:  # the first step (allocations, compilation) is warm-up
            self.started = time.perf_counter()
        self.ended = time.perf_counter()


def lightning_steps_per_s(
    loss_name: str, steps: int, batch: int, device: str, precision: str, compile_: bool, width: str
) -> float:
    make_loss, n_critic = LOSSES[loss_name]
    generator, discriminator = networks(batch_norm=loss_name == "ns", device="cpu", width=width)
    module = GANModule(
        generator,
        discriminator,
        make_loss(),
        partial(torch.optim.Adam, lr=1e-4, betas=(0.5, 0.999)),
        partial(torch.optim.Adam, lr=1e-4, betas=(0.5, 0.999)),
        n_critic=n_critic,
        g_step_budget=steps + 1,
        compile_networks=compile_,
    )
    timer = _StepTimer()
    trainer = pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision=precision,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=50,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=_Unpack(loader(n_critic, batch, steps)))
    return (timer.steps - 1) / (timer.ended - timer.started)


def plain_steps_per_s(
    loss_name: str, steps: int, batch: int, device: str, precision: str, compile_: bool, width: str
) -> float:
    """The same step as GANModule, written out: n_critic D steps on their own real batches, then one G step."""
    make_loss, n_critic = LOSSES[loss_name]
    loss = make_loss()
    generator, discriminator = networks(batch_norm=loss_name == "ns", device=device, width=width)
    if compile_:
        generator.compile()
        if loss.penalty is None:
            discriminator.compile()
    g_opt = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=1e-4, betas=(0.5, 0.999))
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    started, done = 0.0, 0
    for step, (images,) in enumerate(loader(n_critic, batch, steps)):
        for real in images.to(device).reshape(n_critic, batch, 1, 28, 28):
            with autocast, torch.no_grad():
                fake = generator(generator.sample_latent(batch, device=real.device))
            with autocast:
                d_loss = loss.discriminator_loss(discriminator, real, fake).total
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            loss.after_discriminator_step(discriminator)
        discriminator.requires_grad_(False)  # as toggle_optimizer does: no D parameter gradients in the G step
        with autocast:
            g_loss = loss.generator_loss(discriminator, generator(generator.sample_latent(batch, device=device)))
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        discriminator.requires_grad_(True)
        bool(torch.isfinite(torch.stack([d_loss.detach().float(), g_loss.detach().float()])).all())  # same sync
        if device == "cuda":
            torch.cuda.synchronize()
        if step == 0:
            started = time.perf_counter()
        done = step
        if step == steps:
            break
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--steps", type=int, default=20, help="G steps timed per trial (after 1 warm-up step)")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--width", default="paper", choices=list(WIDTHS), help="the paper's networks or half width")
    args = parser.parse_args()
    print(
        f"device={args.device} precision={args.precision} compile={args.compile} batch={args.batch} "
        f"width={args.width} threads={torch.get_num_threads()} torch={torch.__version__}"
    )
    print("| loss | n_critic | GANModule G steps/s | plain G steps/s | ratio | GANModule real images/s |")
    print("|---|---|---|---|---|---|")
    for loss_name in args.losses:
        settings = (loss_name, args.steps, args.batch, args.device, args.precision, args.compile, args.width)
        lightning, plain = [], []
        for _ in range(args.trials):
            lightning.append(lightning_steps_per_s(*settings))
            plain.append(plain_steps_per_s(*settings))
        n_critic = LOSSES[loss_name][1]
        ours, theirs = statistics.median(lightning), statistics.median(plain)
        print(
            f"| {loss_name} | {n_critic} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.3f} | "
            f"{ours * n_critic * args.batch:.1f} |"
        )


if __name__ == "__main__":
    main()
