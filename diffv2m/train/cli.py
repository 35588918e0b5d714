"""``diffv2m train autoencoder|prior|mood``: resumable training, single process or under torchrun
(the mood reader is a seconds-long fit on one process)."""
from __future__ import annotations

import argparse


def main(argv: list[str]) -> int:
    from . import autoencoder, mood, prior
    p = argparse.ArgumentParser(prog="diffv2m train", description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    autoencoder.add_arguments(sub.add_parser("autoencoder", help="train the waveform VAE"))
    prior.add_arguments(sub.add_parser("prior", help="train rhythm predictor + DiT on latents"))
    mood.add_arguments(sub.add_parser("mood", help="fit the picture's mood reader (colour -> "
                                                   "major/minor)"))
    args = p.parse_args(argv)
    if args.what == "autoencoder":
        out = autoencoder.train_autoencoder(args)
    elif args.what == "mood":
        out = mood.train_mood(args)
    else:
        out = prior.train_prior(args)
    print(out)
    return 0
