"""Training throughput of GANModule against a minimal plain-PyTorch loop doing exactly the same work.

Same networks (the paper's InfoGAN at 28 px), same loss object, same n_critic, same batch, same in-memory data and
DataLoader; both run in this process, alternating, so drifts of the machine hit both. Lightning is timed from the
end of the last warm-up step to the last training batch (Trainer setup excluded), the plain loop likewise.

    python scripts/bench_train.py                       # CPU: NS (1:1) and WGAN-GP (5:1), batch 64
    python scripts/bench_train.py --device cuda --precision bf16-mixed
    python scripts/bench_train.py --device cuda --compile --warmup 5   # recompilations stay out of the timing
    python scripts/bench_train.py --width cpu           # model=infogan_cpu's half-width networks
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
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
    """At least ``steps`` G steps' worth of random images (one spare batch)."""
    images = torch.rand((steps + 1) * n_critic * batch, 1, 28, 28) * 2 - 1
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
    """Times the steps after the first ``warmup`` (allocations, kernel tuning, compilation)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.started = self.ended = 0.0
        self.steps = 0

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self.steps += 1
        if self.steps == self.warmup:
            self.started = time.perf_counter()
        self.ended = time.perf_counter()


@dataclass(frozen=True)
class Case:
    """One measured setting, the same for GANModule and the plain loop."""

    loss: str
    steps: int  # G steps timed
    warmup: int  # G steps run before the timing starts
    batch: int
    device: str
    precision: str
    compile: bool
    width: str

    @property
    def n_critic(self) -> int:
        return LOSSES[self.loss][1]


def lightning_steps_per_s(case: Case) -> float:
    generator, discriminator = networks(batch_norm=case.loss == "ns", device="cpu", width=case.width)
    module = GANModule(
        generator,
        discriminator,
        LOSSES[case.loss][0](),
        partial(torch.optim.Adam, lr=1e-4, betas=(0.5, 0.999)),
        partial(torch.optim.Adam, lr=1e-4, betas=(0.5, 0.999)),
        n_critic=case.n_critic,
        g_step_budget=case.warmup + case.steps,
        compile_networks=case.compile,
    )
    timer = _StepTimer(case.warmup)
    trainer = pl.Trainer(
        accelerator="gpu" if case.device == "cuda" else "cpu",
        devices=1,
        precision=case.precision,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=50,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=_Unpack(loader(case.n_critic, case.batch, case.warmup + case.steps)))
    return (timer.steps - case.warmup) / (timer.ended - timer.started)


def plain_steps_per_s(case: Case) -> float:
    """The same step as GANModule, written out: n_critic D steps on their own real batches, then one G step."""
    loss, n_critic, batch, device = LOSSES[case.loss][0](), case.n_critic, case.batch, case.device
    generator, discriminator = networks(batch_norm=case.loss == "ns", device=device, width=case.width)
    if case.compile:
        generator.compile()
        if loss.penalty is None:
            discriminator.compile()
    g_opt = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=1e-4, betas=(0.5, 0.999))
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=case.precision == "bf16-mixed")
    started = 0.0
    for step, (images,) in enumerate(loader(n_critic, batch, case.warmup + case.steps), start=1):
        for real in images.to(device).reshape(n_critic, batch, 1, 28, 28):
            with autocast, torch.no_grad():
                fake = generator(generator.sample_latent(batch, device=real.device))
            with autocast:
                d_step = loss.discriminator_loss(discriminator, real, fake)
            d_loss = d_step.total
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            loss.after_discriminator_step(discriminator, d_step)
        discriminator.requires_grad_(False)  # as toggle_optimizer does: no D parameter gradients in the G step
        with autocast:
            g_loss = loss.generator_loss(discriminator, generator(generator.sample_latent(batch, device=device)), real)
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        discriminator.requires_grad_(True)
        bool(torch.isfinite(torch.stack([d_loss.detach().float(), g_loss.detach().float()])).all())  # same sync
        if device == "cuda":
            torch.cuda.synchronize()
        if step == case.warmup:
            started = time.perf_counter()
        if step == case.warmup + case.steps:
            break
    return case.steps / (time.perf_counter() - started)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    parser.add_argument("--steps", type=_positive, default=20, help="G steps timed per trial, after the warm-up")
    parser.add_argument("--warmup", type=_positive, default=1, help="G steps per trial before the timing starts")
    parser.add_argument("--trials", type=_positive, default=3)
    parser.add_argument("--batch", type=_positive, default=64)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--width", default="paper", choices=list(WIDTHS), help="the paper's networks or half width")
    args = parser.parse_args()
    print(
        f"device={args.device} precision={args.precision} compile={args.compile} batch={args.batch} "
        f"width={args.width} steps={args.steps} warmup={args.warmup} threads={torch.get_num_threads()} "
        f"torch={torch.__version__}"
    )
    print("| loss | n_critic | GANModule G steps/s | plain G steps/s | ratio | GANModule real images/s |")
    print("|---|---|---|---|---|---|")
    for loss in args.losses:
        case = Case(loss, args.steps, args.warmup, args.batch, args.device, args.precision, args.compile, args.width)
        lightning, plain = [], []
        for _ in range(args.trials):
            lightning.append(lightning_steps_per_s(case))
            plain.append(plain_steps_per_s(case))
        ours, theirs = statistics.median(lightning), statistics.median(plain)
        print(
            f"| {loss} | {case.n_critic} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.3f} | "
            f"{ours * case.n_critic * case.batch:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
