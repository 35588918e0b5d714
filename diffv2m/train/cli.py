"""``diffv2m train autoencoder|prior``: resumable training, single process or under torchrun."""
from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    from . import autoencoder, prior
    p = argparse.ArgumentParser(prog="diffv2m train", description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    autoencoder.add_arguments(sub.add_parser("autoencoder", help="train the waveform VAE"))
    prior.add_arguments(sub.add_parser("prior", help="train rhythm predictor + DiT on latents"))
    args = p.parse_args(argv)
    if args.what == "autoencoder":
        out = autoencoder.train_autoencoder(args)
    else:
        out = prior.train_prior(args)
    print(out)
    return 0
